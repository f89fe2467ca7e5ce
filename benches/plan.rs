//! Benchmark of the main job on the example estate: `cargo bench --bench plan`.
//!
//! Prints, per target, the exhaustive check's class count and time, then the wall time of a
//! whole plan (median of several runs), classes per second, and peak memory. No timing
//! assertions: figures are for the closing notes and for spotting regressions by eye.

use intentwall::intent::{load, LoadOptions};
use intentwall::plan::{build, PlanOptions};
use std::path::PathBuf;
use std::time::Instant;

mod proc;
use proc::peak_rss_kib;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let today = time::macros::date!(2026 - 11 - 22);
    let t0 = Instant::now();
    let intent = load(&root.join("intents"), &LoadOptions { today })
        .unwrap_or_else(|d| panic!("example intents must load:\n{d}"))
        .intent;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let opts = PlanOptions {
        backend: intentwall::backend::Backend::snapshots(root.join("snapshots")),
        prune_unmanaged: false,
        deployment: None,
        provider: None,
        shard: None,
        keep_after: false,
    };
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let mut walls = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let plan = build(&intent, &opts).expect("plan builds");
        walls.push(t.elapsed().as_secs_f64() * 1e3);
        last = Some(plan);
    }
    walls.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let plan = last.expect("at least one run");
    println!("load intents: {load_ms:.1} ms");
    println!(
        "{:<6} {:<6} {:>8} {:>9} {:>8} {:>10} {:>8}",
        "dep", "cloud", "probes", "classes", "sim ms", "classes/s", "rules"
    );
    let mut classes = 0u64;
    let mut sim_ms = 0u64;
    for t in &plan.targets {
        let s = &t.simulation;
        classes += s.classes;
        sim_ms += s.millis;
        let rules = t
            .after
            .objects
            .iter()
            .filter(|o| !o.container && !o.foreign)
            .count();
        println!(
            "{:<6} {:<6} {:>8} {:>9} {:>8} {:>10.0} {:>8}",
            t.deployment,
            t.provider.as_str(),
            s.probes,
            s.classes,
            s.millis,
            s.classes as f64 / (s.millis.max(1) as f64 / 1e3),
            rules
        );
    }
    let median = walls[walls.len() / 2];
    println!(
        "plan wall time: median {median:.1} ms, min {:.1} ms, max {:.1} ms over {runs} runs",
        walls[0],
        walls[walls.len() - 1]
    );
    println!(
        "classes checked: {classes} in {sim_ms} ms of simulation (summed over targets, 2 threads)"
    );
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
}
