#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Throughput of canonical CBOR encoding and hashing over a deterministic ~10 MB facts bundle.
//!
//! `cargo bench -p admit_core --bench canonical`

use std::hint::black_box;
use std::time::Duration;

use admit_core::{DigestAlgorithm, snapshot_hash, to_canonical_cbor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

/// Canonical size to reach: ~10 MB.
const TARGET_BYTES: usize = 10_000_000;

/// Deterministic file facts, generated until their canonical encoding reaches `TARGET_BYTES`.
fn facts() -> Vec<Value> {
    let mut facts = Vec::new();
    let mut total = 0usize;
    let mut i = 0u64;
    while total < TARGET_BYTES {
        let fact = json!({
            "kind": "file",
            "path": format!("dir/{:03}/file-{i:04}.txt", i / 100),
            "size": i.wrapping_mul(7_919) % 10_000_000,
            "digest": DigestAlgorithm::Blake3.digest(&i.to_le_bytes()).to_string(),
        });
        total += to_canonical_cbor(&fact).unwrap().len();
        facts.push(fact);
        i += 1;
    }
    facts
}

fn canonical(c: &mut Criterion) {
    let facts = facts();
    let encoded = to_canonical_cbor(&facts).unwrap();
    println!(
        "facts bundle: {} facts, {} bytes of canonical CBOR ({:.2} MiB)",
        facts.len(),
        encoded.len(),
        encoded.len() as f64 / (1024.0 * 1024.0)
    );

    let mut group = c.benchmark_group("canonical");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(6));

    group.bench_function("encode+blake3", |b| {
        b.iter(|| DigestAlgorithm::Blake3.digest(&to_canonical_cbor(black_box(&facts)).unwrap()))
    });
    group.bench_function("encode only", |b| b.iter(|| to_canonical_cbor(black_box(&facts)).unwrap()));
    group.bench_function("blake3 raw", |b| b.iter(|| DigestAlgorithm::Blake3.digest(black_box(&encoded))));
    group.bench_function("snapshot_hash", |b| {
        b.iter(|| snapshot_hash(black_box(&facts), DigestAlgorithm::Blake3).unwrap())
    });
    group.finish();
}

criterion_group!(benches, canonical);
criterion_main!(benches);
