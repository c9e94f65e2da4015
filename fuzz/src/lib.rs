//! The fuzz targets' bodies: one function per target in [`checks`], each taking the raw input and
//! panicking when an invariant breaks. `tests/fuzz_regressions.rs` replays kept inputs through
//! the same functions in `make test`.

pub mod checks;
