//! Benchmark of flow-log replay on the example estate: `cargo bench --bench replay`.
//!
//! Generates AWS VPC flow logs (default v2 text) of 1 M and 5 M records for the estate in
//! `intents/` and replays each in-process through the function `intentwall simulate --flows`
//! uses, printing records per second and the run's peak RSS. The peak is reset between runs
//! (`/proc/self/clear_refs`), so a peak that does not grow from 1 M to 5 M records shows the
//! replay's memory does not follow the log. No timing assertions.
//!
//! Records mix what a real log holds: members of the declared `db` ranges talking to each
//! other and to external hosts (allowed and denied), addresses inside the VPC CIDRs but in no
//! declared range (unattributed), ICMP, NODATA lines and traffic of no deployment. Source
//! ports are random ephemeral ports, as in real logs. `REPLAY_SIZES=1000000,5000000` chooses
//! the sizes.

#[path = "estate/mod.rs"]
mod estate;

use intentwall::intent::{load, LoadOptions};
use intentwall::plan::{build, PlanOptions};
use intentwall::simulate::flowlog::{read_records, replay_reader, FlowFormat, ParseError};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

mod proc;
use proc::peak_rss_kib;

/// CPU time (user + system) of the process so far, in seconds: the machine is shared, so
/// records per CPU second is the figure that compares across runs.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the command name (which is in parentheses): utime and stime are 14 and 15
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // CLK_TCK is 100 on Linux
    (ticks(11) + ticks(12)) / 100.0
}

/// Reset the peak RSS to the current RSS (Linux >= 4.0); false when not permitted.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// The AWS VPCs of the example estate: (account, second octet of 10.X.0.0/16). The `db`
/// group declares 10.X.20.0/24 in each.
const VPCS: [(&str, u8); 3] = [
    ("111122223333", 10),
    ("444455556666", 40),
    ("777788889999", 70),
];

/// External hosts the intent names (corp, partners, backup vault, DNS, blocklist, CI) and
/// some it does not.
const EXTERNAL: [&str; 12] = [
    "203.0.113.20",
    "203.0.113.200",
    "198.51.100.10",
    "198.51.100.140",
    "100.64.20.10",
    "100.64.10.7",
    "192.0.2.53",
    "192.0.2.150",
    "192.0.2.70",
    "54.239.28.85",
    "198.18.10.4",
    "8.8.4.4",
];

fn generate(path: &Path, n: u64) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    writeln!(w, "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status")?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..n {
        let (src, dst): (String, String);
        let (account, x) = VPCS[rng.below(3) as usize];
        let db = |rng: &mut Rng| format!("10.{x}.20.{}", 4 + rng.below(40));
        let other_vpc = |rng: &mut Rng| format!("10.{x}.{}.{}", 1 + rng.below(8), rng.below(250));
        let ext = |rng: &mut Rng| rng.pick(&EXTERNAL).to_string();
        let mut proto = 6;
        let mut dport: u16 = 5432;
        let kind = rng.below(100);
        match kind {
            // external hosts to the database: corp is denied, the rest has no allow flow
            0..=29 => {
                src = ext(&mut rng);
                dst = db(&mut rng);
                dport = [5432, 443, 22, 5432][rng.below(4) as usize];
            }
            // replication inside the db group
            30..=49 => {
                src = db(&mut rng);
                dst = db(&mut rng);
            }
            // db egress (restricted: only the backup vault over https is declared)
            50..=64 => {
                src = db(&mut rng);
                dst = ext(&mut rng);
                dport = [443, 53, 80][rng.below(3) as usize];
                if dport == 53 {
                    proto = 17;
                }
            }
            // the reply direction of the above
            65..=72 => {
                src = ext(&mut rng);
                dst = db(&mut rng);
                dport = 40000 + rng.below(20000) as u16;
            }
            // hosts in the VPC but in no declared range: unattributed
            73..=82 => {
                src = other_vpc(&mut rng);
                dst = db(&mut rng);
            }
            // ICMP without type/code, as AWS logs it
            83..=88 => {
                src = ext(&mut rng);
                dst = db(&mut rng);
                proto = 1;
                dport = 0;
            }
            // IPv6 inside the VPC (no declared v6 range: unattributed) and outside
            89..=92 => {
                src = format!("2001:db8:{x}::{:x}", 1 + rng.below(4000));
                dst = format!("2001:db8:53::{}", 53 + rng.below(2));
                proto = 17;
                dport = 53;
            }
            // traffic of no deployment
            93..=97 => {
                src = "172.31.5.5".into();
                dst = ext(&mut rng);
                dport = 443;
            }
            _ => {
                writeln!(
                    w,
                    "2 {account} eni-0d4b6a8c1e3f5a702 - - - - - - - 1763800000 1763800060 - NODATA"
                )?;
                continue;
            }
        }
        let sport = if proto == 1 {
            0
        } else {
            1024 + rng.below(64000)
        };
        let action = if rng.below(4) == 0 {
            "REJECT"
        } else {
            "ACCEPT"
        };
        writeln!(
            w,
            "2 {account} eni-0d4b6a8c1e3f5a702 {src} {dst} {sport} {dport} {proto} {} {} {} {} {action} OK",
            1 + i % 50,
            60 + i % 9000,
            1763800000 + i / 1000,
            1763800060 + i / 1000
        )?;
    }
    w.flush()
}

fn main() {
    // `REPLAY_ESTATE_LOG=PATH REPLAY_ESTATE_FLOWS=N`: only write the AWS VPC flow log of the
    // generated estate of N flows (as `benches/scale.rs` does, seed 7, 2 M records) and exit,
    // to time `intentwall simulate --flows` on an estate kept with `SCALE_KEEP=1`.
    if let Some(path) = std::env::var_os("REPLAY_ESTATE_LOG") {
        let flows: usize = std::env::var("REPLAY_ESTATE_FLOWS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000);
        let records: usize = std::env::var("REPLAY_ESTATE_RECORDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2_000_000);
        estate::Estate::generate(flows, 7)
            .write_aws_flow_log(std::path::Path::new(&path), records, 7)
            .expect("write flow log");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let today = time::macros::date!(2026 - 11 - 22);
    let intent = load(&root.join("intents"), &LoadOptions { today })
        .unwrap_or_else(|d| panic!("example intents must load:\n{d}"))
        .intent;
    let opts = PlanOptions {
        backend: intentwall::backend::Backend::snapshots(root.join("snapshots")),
        prune_unmanaged: false,
        deployment: None,
        provider: None,
        shard: None,
        keep_after: true,
    };
    let plan = build(&intent, &opts).expect("plan builds");
    let sizes: Vec<u64> = std::env::var("REPLAY_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 5_000_000]);
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let fmt = FlowFormat::AwsVpc;
    println!("median of {runs} runs per row; CPU s is user + system time of the process");
    println!(
        "{:>10} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9} {:>12} {:>13}",
        "records",
        "checked",
        "mismatches",
        "drift",
        "wall s",
        "CPU s",
        "M rec/s",
        "M rec/CPU s",
        "peak RSS MiB"
    );
    for n in sizes {
        let path = dir.join(format!("replay-bench-{n}.log"));
        if !path.exists() {
            generate(&path, n).expect("write the generated log");
        }
        let name = path.display().to_string();
        let open = || BufReader::with_capacity(1 << 16, File::open(&path).expect("open the log"));
        // reading and parsing alone, for where the time goes
        let mut parse = Vec::new();
        for _ in 0..runs {
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let mut read = 0u64;
            read_records(fmt, &name, open(), |_| {
                read += 1;
                Ok::<(), ParseError>(())
            })
            .expect("parses");
            parse.push((t.elapsed().as_secs_f64(), cpu_seconds() - cpu, read));
        }
        parse.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (secs, cpu, read) = parse[runs / 2];
        println!(
            "{:>10} {:>9} {:>10} {:>8} {:>8.2} {:>8.2} {:>9.2} {:>12.2}   (read and parse only)",
            read,
            "-",
            "-",
            "-",
            secs,
            cpu,
            read as f64 / secs / 1e6,
            read as f64 / cpu.max(0.01) / 1e6
        );
        // the replay (what `simulate --flows` runs), peak RSS of the run
        let mut replays = Vec::new();
        let mut reset = true;
        let mut peak = 0.0f64;
        for _ in 0..runs {
            reset &= reset_peak();
            let (t, cpu) = (Instant::now(), cpu_seconds());
            let r = replay_reader(&intent, &plan, &name, fmt, open()).expect("replays");
            replays.push((t.elapsed().as_secs_f64(), cpu_seconds() - cpu, r));
            peak = peak.max(peak_rss_kib().map_or(f64::NAN, |k| k as f64 / 1024.0));
        }
        replays.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (secs, cpu, r) = &replays[runs / 2];
        println!(
            "{:>10} {:>9} {:>10} {:>8} {:>8.2} {:>8.2} {:>9.2} {:>12.2} {:>13.1}{}",
            r.records,
            r.checked,
            r.mismatches,
            r.drift,
            secs,
            cpu,
            r.records as f64 / secs / 1e6,
            r.records as f64 / cpu.max(0.01) / 1e6,
            peak,
            if reset { "" } else { " (process peak)" }
        );
    }
}
