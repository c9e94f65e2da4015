//! `cargo fuzz run payload`: see `checks::payload` for what it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| remote_settings_fuzz::checks::payload(data));
