//! Fuzzing every parser of untrusted input, bounded in time so it runs in CI: intent YAML,
//! each cloud's snapshot shapes, plan files (and flow logs, in `flowlog_fuzz` below).
//!
//! Coverage-guided fuzzers (cargo fuzz) need a nightly toolchain this project does not
//! assume, so this is a mutation fuzzer of our own: it starts from real, valid inputs (the
//! example estate, its snapshots, a plan of it), applies random byte-, token- and
//! structure-level mutations, and feeds each result to the parser. The property is the one a
//! firewall tool owes its users: any input gives a value or an error, never a panic.
//!
//! Budget per target: `FUZZ_SECONDS` (default 3; CI runs a longer release pass, see scripts/test.sh) and at most `FUZZ_CASES` inputs (default
//! 20,000); the seed is `FUZZ_SEED` (default fixed, so CI is reproducible). Each target prints
//! how many inputs it tried. A panicking input is written to `target/fuzz-failures/` and the
//! test fails naming it; add it to `tests/fuzz_regressions/` to keep it as a regression case.
#![cfg(all(feature = "aws", feature = "azure", feature = "gcp"))]

use intentwall::intent::{load_files, LoadOptions};
use intentwall_contract::ProviderKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
mod common;
use common::*;

/// A small deterministic generator (xorshift64*): no dependency, same sequence for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments that reach the interesting branches of our parsers faster than random bytes.
const TOKENS: &[&str] = &[
    "\n",
    " ",
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "#",
    "&a",
    "*a",
    "!!str ",
    "~",
    "null",
    "true",
    "-1",
    "0",
    "65535",
    "65536",
    "99999999999999999999",
    "1e309",
    "NaN",
    "0.0.0.0/0",
    "::/0",
    "10.0.0.5/24",
    "::ffff:1.2.3.4/120",
    "tcp/443",
    "tcp/+443",
    "icmp/8/0",
    "any",
    "../../etc",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "é",
    "\t",
    "\r\n",
    "version: 1\n",
    "groups:",
    "flows:",
    "from:",
    "to:",
    "services:",
    "addresses:",
    "includes:",
    "<<: *a",
    "\"IpProtocol\"",
    "\"-1\"",
    "\"FromPort\"",
    "\"priority\"",
    "\"sourceRanges\"",
    "\"all\"",
    "\"action\"",
    "\"create\"",
    "\"after\"",
    "\"before\"",
    "\"format_version\"",
];

fn mutate(rng: &mut Rng, seed: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            1 if len > 0 => {
                // delete a run
                let i = rng.below(len);
                let n = 1 + rng.below(16.min(len - i));
                v.drain(i..i + n);
            }
            2 => {
                let i = rng.below(len + 1);
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                v.splice(i..i, t.iter().copied());
            }
            3 if len > 0 => {
                // duplicate a run somewhere else
                let i = rng.below(len);
                let n = 1 + rng.below(64.min(len - i));
                let chunk = v[i..i + n].to_vec();
                let j = rng.below(len + 1);
                v.splice(j..j, chunk);
            }
            4 if len > 0 => v.truncate(rng.below(len)),
            5 if !corpus.is_empty() => {
                // splice in a piece of another input
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = 1 + rng.below(128.min(other.len() - i));
                    let j = rng.below(len + 1);
                    v.splice(j..j, other[i..i + n].iter().copied());
                }
            }
            6 if len > 1 => {
                // swap two lines
                let text = String::from_utf8_lossy(&v).into_owned();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                lines.swap(a, b);
                v = lines.join("\n").into_bytes();
            }
            _ => {
                // a digit run replaced by an extreme number
                let i = rng.below(len + 1);
                let t = [
                    "-1",
                    "0",
                    "4294967296",
                    "340282366920938463463374607431768211456",
                ][rng.below(4)];
                v.splice(i..i, t.bytes());
            }
        }
    }
    v
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Run `check` on mutations of `seeds` until the budget is spent; fail on the first panic.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, check: impl Fn(&[u8])) {
    let budget = Duration::from_secs_f64(env("FUZZ_SECONDS", 3.0));
    let max: u64 = env("FUZZ_CASES", 20_000);
    let mut rng = Rng(env("FUZZ_SEED", 0x1a2b_3c4d_5e6f_7081u64) ^ name.len() as u64);
    let started = Instant::now();
    let mut tried = 0u64;
    // the seeds themselves and the regression corpus first
    let mut fixed = seeds.clone();
    let dir = root().join("tests/fuzz_regressions").join(name);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        fixed.extend(paths.iter().filter_map(|p| std::fs::read(p).ok()));
    }
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // panics are reported below, with their input
    let mut failure = None;
    for input in fixed.iter().cloned().chain(std::iter::from_fn(|| {
        let k = rng.below(seeds.len());
        Some(mutate(&mut rng, &seeds[k], &seeds))
    })) {
        if tried >= max || (tried >= fixed.len() as u64 && started.elapsed() > budget) {
            break;
        }
        tried += 1;
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(&input))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failure = Some((input, msg));
            break;
        }
    }
    std::panic::set_hook(prev);
    eprintln!(
        "fuzz {name}: {tried} inputs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some((input, msg)) = failure {
        let out = root().join("target/fuzz-failures");
        std::fs::create_dir_all(&out).unwrap();
        let p = out.join(format!("{name}-{tried}"));
        std::fs::write(&p, &input).unwrap();
        panic!("fuzz {name}: input {} panicked: {msg}", p.display());
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn example_intent_files() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for f in files(&root().join("intents")) {
        let rel =
            f.0.strip_prefix(root().join("intents"))
                .unwrap()
                .to_string_lossy()
                .into_owned();
        out.push((rel, f.1));
    }
    out
}

#[test]
fn fuzz_intent_yaml() {
    let originals = example_intent_files();
    let seeds: Vec<Vec<u8>> = originals.iter().map(|(_, b)| b.clone()).collect();
    let opts = LoadOptions {
        today: time::macros::date!(2026 - 11 - 22),
    };
    let target = std::cell::Cell::new(0usize);
    fuzz("intent_yaml", seeds, |input| {
        // replace one file of the estate by the input, keep the others
        let k = target.get() % originals.len();
        target.set(k + 1);
        let set: Vec<(String, String)> = originals
            .iter()
            .enumerate()
            .map(|(i, (p, b))| {
                let bytes = if i == k { input } else { b.as_slice() };
                (p.clone(), String::from_utf8_lossy(bytes).into_owned())
            })
            .collect();
        if let Err(d) = load_files(&set, &opts) {
            assert!(!d.to_string().is_empty(), "an error says something");
        }
    });
}

fn example_intent() -> intentwall::intent::Intent {
    intentwall::intent::load(
        &root().join("intents"),
        &LoadOptions {
            today: time::macros::date!(2026 - 11 - 22),
        },
    )
    .unwrap()
    .intent
}

fn fuzz_snapshots(kind: ProviderKind) {
    let intent = example_intent();
    let provider = intentwall::backend::require(kind).unwrap();
    let format = intentwall::backend::format(kind).unwrap();
    let seeds: Vec<Vec<u8>> = ["us", "eu", "ap"]
        .iter()
        .map(|d| read(&root().join(format!("snapshots/{d}/{kind}.json"))))
        .collect();
    let dep = &intent.deployments["us"];
    let di = intentwall::graph::resolve(dep, kind).unwrap();
    fuzz(&format!("snapshot_{kind}"), seeds, |input| {
        let text = String::from_utf8_lossy(input);
        if let Ok(state) = format.parse_snapshot(&text, &di) {
            // whatever parses must also lower, translate against, render and re-read
            let _ = provider.lower(&state, &di);
            let _ = provider.translate(&di, &state);
            let again = format.render_snapshot(&state);
            format
                .parse_snapshot(&again, &di)
                .expect("a rendered snapshot reads back");
        }
    });
}

#[test]
fn fuzz_snapshot_aws() {
    fuzz_snapshots(ProviderKind::Aws);
}

#[test]
fn fuzz_snapshot_azure() {
    fuzz_snapshots(ProviderKind::Azure);
}

#[test]
fn fuzz_snapshot_gcp() {
    fuzz_snapshots(ProviderKind::Gcp);
}

#[test]
fn fuzz_plan_files() {
    let t = scratch();
    let o = iw(t.path(), &["plan", "--out", "plan.json"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let seed = read(&t.path().join("plan.json"));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plan.json");
    fuzz("plan_file", vec![seed], |input| {
        std::fs::write(&p, input).unwrap();
        let _ = intentwall::plan::Plan::read(&p);
    });
}

#[test]
fn fuzz_flow_logs() {
    use intentwall::simulate::flowlog::{parse, FlowFormat};
    let dir = root().join("tests/flowlogs");
    let cases = [
        (FlowFormat::AwsVpc, "us-aws-vpc.log"),
        (FlowFormat::AzureNsg, "us-azure-nsg.json"),
        (FlowFormat::Gcp, "us-gcp.jsonl"),
        (FlowFormat::Csv, "flows.csv"),
    ];
    for (format, file) in cases {
        let seed = read(&dir.join(file));
        fuzz(
            &format!("flowlog_{}", format.as_str()),
            vec![seed],
            |input| {
                let text = String::from_utf8_lossy(input);
                if let Ok(log) = parse(format, file, &text) {
                    for r in &log.records {
                        assert_eq!(r.src.is_ipv4(), r.dst.is_ipv4(), "mixed families pass");
                    }
                }
            },
        );
    }
}
