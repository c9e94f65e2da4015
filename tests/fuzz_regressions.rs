//! The fuzz targets' checks (`fuzz/src/checks.rs`, compiled here as is) over every input kept in
//! the repository: the seed corpus (`fuzz/seeds/<target>/`) and the inputs fuzzing found
//! crashing, kept once fixed (`tests/data/fuzz-regressions/<target>/`). Each input must pass the
//! same invariants as under libFuzzer. Pure: no stack needed. See README "Fuzzing".

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Replay every kept input of `target` through `check`; the seeds must exist.
fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = files(&root.join("fuzz/seeds").join(target));
    assert!(!seeds.is_empty(), "no seed for {target}");
    let regressions = files(&root.join("tests/data/fuzz-regressions").join(target));
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn pem_chain_inputs_pass() {
    replay("pem_chain", checks::pem_chain);
}

#[test]
fn der_chain_inputs_pass() {
    replay("der_chain", checks::der_chain);
}

#[test]
fn signature_inputs_pass() {
    replay("signature", checks::signature);
}

#[test]
fn payload_inputs_pass() {
    replay("payload", checks::payload);
}

#[test]
fn mappings_inputs_pass() {
    replay("mappings", checks::mappings);
}

#[test]
fn thresholds_inputs_pass() {
    replay("thresholds", checks::thresholds);
}
