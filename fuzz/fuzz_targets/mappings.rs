//! `cargo fuzz run mappings`: see `checks::mappings` for what it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| remote_settings_fuzz::checks::mappings(data));
