//! `cargo fuzz run der_chain`: see `checks::der_chain` for what it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| remote_settings_fuzz::checks::der_chain(data));
