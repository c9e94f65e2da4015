//! The per-changeset CPU path of `validate_signature` on saved changesets, without the network:
//! for each file, parse and digest the body ([`payload::digest_changeset`]) and verify its
//! signatures with the saved x5u chains, on one thread, `ROUNDS` times over. Prints one JSON line:
//! bytes, wall seconds, the thread's CPU seconds (Linux's `/proc/thread-self/schedstat`, so that a
//! busy machine does not count) and milliseconds of CPU per MB.
//!
//! Usage: `verify_changesets DIR [ROUNDS]`. `DIR` holds `<bucket>--<collection>.json` changeset
//! bodies and `x5u.json`, an object mapping each x5u URL to a PEM file name in `DIR`. Every
//! signature must verify (the check time is `CHECK_AT` or now, the root is not pinned).

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use commands::signature::{chain, payload, signer_name, verify_entry, CertChain, ChainPolicy};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!("DIR?"))?);
    let rounds: usize = args.next().map_or(Ok(1), |r| r.parse())?;
    let at = match std::env::var("CHECK_AT") {
        Ok(at) => at.parse()?,
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    };
    let policy = ChainPolicy {
        at,
        root_hash: None,
    };
    let x5us: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(dir.join("x5u.json"))?)?;
    let mut chains: BTreeMap<String, CertChain> = BTreeMap::new();
    for (url, file) in x5us {
        let chain = chain::validate(&std::fs::read(dir.join(file))?, &policy)?;
        chains.insert(url, chain);
    }
    let mut bodies = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some((bucket, _)) = name.strip_suffix(".json").and_then(|n| n.split_once("--")) {
            bodies.push((bucket.to_string(), std::fs::read(dir.join(&name))?));
        }
    }
    let bytes: usize = bodies.iter().map(|(_, b)| b.len()).sum();
    let (started, cpu_started) = (Instant::now(), thread_cpu_seconds()?);
    for _ in 0..rounds {
        for (bucket, body) in &bodies {
            let digest = payload::digest_changeset(body.clone())?;
            for entry in &digest.signatures {
                let x5u = entry.x5u.as_deref().unwrap_or_default();
                let chain = chains
                    .get(x5u)
                    .ok_or_else(|| anyhow::anyhow!("no chain saved for {x5u}"))?;
                let signature = entry.signature.as_deref().unwrap_or_default();
                verify_entry(chain, signer_name(bucket, None), signature, &digest.digest)?;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = thread_cpu_seconds()? - cpu_started;
    let megabytes = (bytes * rounds) as f64 / 1e6;
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "changesets": bodies.len(),
            "bytes": bytes,
            "rounds": rounds,
            "seconds": round3(seconds),
            "cpu_seconds": round3(cpu),
            "cpu_ms_per_mb": (cpu * 1000.0 / megabytes * 100.0).round() / 100.0,
        })
    );
    Ok(())
}

/// Time this thread has run on a CPU, in seconds (the first field of its schedstat, in ns).
fn thread_cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns: u64 = stat
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow::anyhow!("empty schedstat"))?
        .parse()?;
    Ok(ns as f64 / 1e9)
}
