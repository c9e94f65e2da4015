//! `cargo fuzz run signature`: see `checks::signature` for what it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| remote_settings_fuzz::checks::signature(data));
