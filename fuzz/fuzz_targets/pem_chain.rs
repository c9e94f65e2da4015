//! `cargo fuzz run pem_chain`: see `checks::pem_chain` for what it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| remote_settings_fuzz::checks::pem_chain(data));
