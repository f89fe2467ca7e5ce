//! Estate-scale benchmark: `cargo bench --bench scale` (or `benches/aerleon-compare.sh`).
//!
//! For each size in `SCALE_SIZES` (flows; default `250,1000,2000,8000`) it generates the
//! synthetic estate of `benches/estate` in a temporary directory and measures, each as a child
//! process so that wall time and peak memory are the real command's:
//! - `intentwall plan` of all 18 targets against an empty snapshot root (every target new, so
//!   translation, diff, rendering and the exhaustive check all run in full);
//! - `intentwall plan --provider gcp` (the 6 GCP targets), the like-for-like part for Aerleon;
//! - Aerleon's `aclgen` rendering the same estate for its GCE generator, when installed;
//! - `intentwall simulate --provider aws --flows LOG` over a generated AWS VPC flow log of
//!   `SCALE_REPLAY_RECORDS` records (default 2,000,000; 0 skips it): replay records/s.
//!
//! Wall time is the median of `SCALE_RUNS` runs (default 3); peak memory is the largest
//! `ru_maxrss` of the runs, from `wait4` in a small launcher process (the command and any
//! children it waited for; for aclgen that is its largest process, not their sum). A run
//! longer than `SCALE_TIMEOUT_S` seconds (default 300) is killed with its process group and
//! reported as `> timeout`; once a size times out, larger sizes of the same measurement are
//! not started (they could only take longer). Load average (/proc/loadavg) is printed at the
//! start and end of each size so a busy machine shows in the figures.
//!
//! Other knobs: `SCALE_SEED` (default 7), `SCALE_TMPDIR` (where estates go; default the system
//! temp dir), `SCALE_KEEP=1` keeps the generated estates, `INTENTWALL_BIN` and `AERLEON_ACLGEN`
//! override the binaries. No timing assertions: the figures are for reading, not for failing.

mod estate;

use estate::Estate;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(s) if !s.trim().is_empty() => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not valid")),
        _ => default,
    }
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// One finished (or killed) child.
struct Run {
    wall: Duration,
    maxrss_kib: u64,
    /// Exit code; `None` when killed by a signal.
    code: Option<i32>,
    timed_out: bool,
}

/// First argument that makes this binary a launcher (see [`launch`]).
const LAUNCH: &str = "--launch-and-report-rusage";

/// Launcher mode: `scale --launch-and-report-rusage FILE -- PROGRAM ARGS...` runs PROGRAM
/// with the inherited stdio, reaps it with `wait4`, writes its peak RSS (KiB) to FILE and
/// exits with its exit code (128 + signal when killed).
///
/// Why a launcher: Linux carries the pre-exec address space's high-water mark into the
/// child's `ru_maxrss`, so a child forked by this bench after it parsed a large plan JSON
/// would report at least the bench's own peak. Forked from this freshly started, small
/// process, the command's `ru_maxrss` is its own.
fn launch(args: &[std::ffi::OsString]) -> i32 {
    let [file, dashdash, program, rest @ ..] = args else {
        eprintln!("usage: scale {LAUNCH} FILE -- PROGRAM ARGS...");
        return 125;
    };
    assert_eq!(dashdash, "--");
    let child = match Command::new(program).args(rest).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot run {}: {e}", program.to_string_lossy());
            return 127;
        }
    };
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; an all-zero value is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; status and ru are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            eprintln!("wait4: {}", io::Error::last_os_error());
            return 125;
        }
    }
    let _ = fs::write(file, ru.ru_maxrss.max(0).to_string());
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// Run `cmd` (through the launcher) with stdout and stderr to files, killing its process
/// group after `timeout`. Wall time is the launcher's, which adds one fork and exec.
fn run(cmd: &Command, out: &Path, err: &Path, timeout: Duration) -> io::Result<Run> {
    let rss_file = out.with_extension("maxrss");
    let _ = fs::remove_file(&rss_file);
    let mut l = Command::new(std::env::current_exe()?);
    l.arg(LAUNCH)
        .arg(&rss_file)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => l.env(k, v),
            None => l.env_remove(k),
        };
    }
    l.stdin(Stdio::null())
        .stdout(fs::File::create(out)?)
        .stderr(fs::File::create(err)?)
        .process_group(0);
    let start = Instant::now();
    let child = l.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    let mut timed_out = false;
    loop {
        // SAFETY: pid is our own unreaped child; status is valid for writes.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if !timed_out && start.elapsed() > timeout {
            // the whole group: the launcher, the command, and aclgen's renderer processes
            // SAFETY: plain syscall on the group created for this child.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            timed_out = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = start.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let maxrss_kib = fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    Ok(Run {
        wall,
        maxrss_kib,
        code,
        timed_out,
    })
}

/// The figures of one measurement at one size.
enum Outcome {
    Done { median: Duration, maxrss_kib: u64 },
    TimedOut,
    Failed(String),
    Skipped(&'static str),
}

impl Outcome {
    fn wall(&self) -> String {
        match self {
            Outcome::Done { median, .. } => secs(*median),
            Outcome::TimedOut => format!("> {} s", env_or("SCALE_TIMEOUT_S", 300u64)),
            Outcome::Failed(_) => "error".into(),
            Outcome::Skipped(why) => format!("– ({why})"),
        }
    }

    fn mib(&self) -> String {
        match self {
            Outcome::Done { maxrss_kib, .. } => format!("{:.0}", *maxrss_kib as f64 / 1024.0),
            _ => "–".into(),
        }
    }

    fn median(&self) -> Option<f64> {
        match self {
            Outcome::Done { median, .. } => Some(median.as_secs_f64()),
            _ => None,
        }
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Run `make()` `runs` times; `ok` says which exit codes are a success for this command.
fn measure(
    label: &str,
    runs: usize,
    timeout: Duration,
    dir: &Path,
    ok: &dyn Fn(Option<i32>) -> bool,
    make: &dyn Fn() -> Command,
) -> Outcome {
    let mut walls = Vec::new();
    let mut maxrss = 0;
    for i in 0..runs {
        let out = dir.join(format!("{label}.out"));
        let err = dir.join(format!("{label}.err"));
        let r = match run(&make(), &out, &err, timeout) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("cannot run: {e}")),
        };
        if r.timed_out {
            println!("  {label}: run {} killed after {}", i + 1, secs(r.wall));
            return Outcome::TimedOut;
        }
        if !ok(r.code) {
            return Outcome::Failed(format!(
                "exit {:?} after {}; stderr ends:\n{}",
                r.code,
                secs(r.wall),
                tail(&err, 15)
            ));
        }
        println!(
            "  {label}: run {} {} ({:.0} MiB, exit {:?})",
            i + 1,
            secs(r.wall),
            r.maxrss_kib as f64 / 1024.0,
            r.code
        );
        walls.push(r.wall);
        maxrss = maxrss.max(r.maxrss_kib);
    }
    walls.sort();
    Outcome::Done {
        median: walls[walls.len() / 2],
        maxrss_kib: maxrss,
    }
}

/// What the last plan's JSON says: targets, classes, findings by kind, blocked targets.
struct PlanSummary {
    targets: usize,
    classes: u64,
    probes: u64,
    changes: usize,
    blocked: usize,
    findings: std::collections::BTreeMap<String, usize>,
    mismatches: u64,
}

fn summarize_plan(path: &Path) -> Option<PlanSummary> {
    let text = fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let targets = v["targets"].as_array()?;
    let mut s = PlanSummary {
        targets: targets.len(),
        classes: 0,
        probes: 0,
        changes: 0,
        blocked: 0,
        findings: Default::default(),
        mismatches: 0,
    };
    let count = |f: &serde_json::Value, s: &mut PlanSummary| {
        let kind = f["kind"].as_str().unwrap_or("?").to_string();
        *s.findings.entry(kind).or_default() += 1;
    };
    for f in v["guardrails"].as_array().into_iter().flatten() {
        count(f, &mut s);
    }
    for t in targets {
        s.classes += t["simulation"]["classes"].as_u64().unwrap_or(0);
        s.probes += t["simulation"]["probes"].as_u64().unwrap_or(0);
        s.mismatches += t["simulation"]["mismatches"].as_u64().unwrap_or(0);
        s.changes += t["changes"].as_array().map_or(0, |c| c.len());
        s.blocked += t["blocked"].as_bool().unwrap_or(false) as usize;
        for f in t["findings"].as_array().into_iter().flatten() {
            count(f, &mut s);
        }
    }
    Some(s)
}

/// The intentwall binary: cargo builds it for benches (bench profile = release settings).
fn intentwall_bin() -> PathBuf {
    std::env::var_os("INTENTWALL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_intentwall")))
}

/// Aerleon's `aclgen`: `AERLEON_ACLGEN`, else the venv the compare script installs under the
/// target directory (found from this bench's own path, target/release/deps/scale-…), else
/// PATH.
fn aclgen_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AERLEON_ACLGEN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let venv = exe.ancestors().nth(3)?.join("aerleon-venv/bin/aclgen");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("aclgen"))
            .find(|p| p.is_file())
    })
}

struct Row {
    flows: usize,
    targets: String,
    classes_per_target: String,
    plan: Outcome,
    gcp: Outcome,
    aerleon: Outcome,
    replay: String,
    load_start: String,
    load_end: String,
}

fn ratio(a: &Outcome, b: &Outcome) -> String {
    match (a.median(), b.median()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == LAUNCH) {
        std::process::exit(launch(&args[2..]));
    }
    // otherwise `cargo bench` passes `--bench`; the benchmark takes no arguments
    let sizes: Vec<usize> = std::env::var("SCALE_SIZES")
        .unwrap_or_else(|_| "250,1000,2000,8000".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .expect("SCALE_SIZES: comma-separated flow counts")
        })
        .collect();
    let runs: usize = env_or("SCALE_RUNS", 3usize).max(1);
    let timeout = Duration::from_secs(env_or("SCALE_TIMEOUT_S", 300u64));
    let seed: u64 = env_or("SCALE_SEED", 7u64);
    let records: usize = env_or("SCALE_REPLAY_RECORDS", 2_000_000usize);
    let keep = std::env::var("SCALE_KEEP").is_ok_and(|v| v == "1");
    let tmp_root = std::env::var_os("SCALE_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let bin = intentwall_bin();
    let aclgen = aclgen_bin();
    println!("intentwall: {}", bin.display());
    match &aclgen {
        Some(a) => println!("aclgen:     {}", a.display()),
        None => println!("aclgen:     not found (benches/aerleon-compare.sh installs it); Aerleon column skipped"),
    }
    println!(
        "sizes {sizes:?}, {runs} runs each (median), timeout {} s, seed {seed}, replay {records} records, {} cores",
        timeout.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let success = |c: Option<i32>| matches!(c, Some(0 | 2 | 3)); // plan/simulate: 3 = blocked
    let zero = |c: Option<i32>| c == Some(0);
    let mut plan_timed_out = false;
    let mut gcp_timed_out = false;
    let mut replay_timed_out = false;
    let mut rows = Vec::new();
    for &n in &sizes {
        let load_start = loadavg();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("intentwall-scale-{n}-"))
            .tempdir_in(&tmp_root)
            .expect("temporary directory");
        let root = tmp.path().to_path_buf();
        let intents = root.join("intents");
        let snapshots = root.join("snapshots");
        let aerleon = root.join("aerleon");
        let logs = root.join("logs");
        for d in [&intents, &snapshots, &logs] {
            fs::create_dir_all(d).expect("create estate directory");
        }
        let t = Instant::now();
        let estate = Estate::generate(n, seed);
        estate.write_intents(&intents).expect("write intents");
        estate
            .write_aerleon(&aerleon)
            .expect("write aerleon policy");
        println!(
            "\n== {n} flows: {} (generated in {}, {}; load {load_start})",
            estate.describe(),
            secs(t.elapsed()),
            root.display()
        );

        let iw = |args: &[&str]| {
            let mut c = Command::new(&bin);
            c.env("INTENTWALL_TODAY", estate::TODAY)
                .arg("--intents")
                .arg(&intents)
                .arg("--snapshots")
                .arg(&snapshots)
                .args(args);
            c
        };
        // the estate must be valid and free of guardrail findings, or the figures mean nothing
        match run(
            &iw(&["validate"]),
            &logs.join("validate.out"),
            &logs.join("validate.err"),
            timeout,
        ) {
            Ok(r) if r.code == Some(0) => println!("  validate: ok ({})", secs(r.wall)),
            Ok(r) => println!(
                "  validate: exit {:?} (the generator should avoid this):\n{}",
                r.code,
                tail(&logs.join("validate.err"), 15)
            ),
            Err(e) => panic!("cannot run {}: {e}", bin.display()),
        }

        let plan = if plan_timed_out {
            Outcome::Skipped("smaller size timed out")
        } else {
            measure("plan", runs, timeout, &logs, &success, &|| {
                iw(&["plan", "--format", "json"])
            })
        };
        plan_timed_out |= matches!(plan, Outcome::TimedOut);
        let summary = matches!(plan, Outcome::Done { .. })
            .then(|| summarize_plan(&logs.join("plan.out")))
            .flatten();
        if let Some(s) = &summary {
            println!(
                "  plan: {} targets ({} blocked), {} changes, {} probes, {} classes, {} mismatches, findings {:?}",
                s.targets, s.blocked, s.changes, s.probes, s.classes, s.mismatches, s.findings
            );
        }
        if let Outcome::Failed(e) = &plan {
            println!("  plan failed: {e}");
        }

        let gcp = if gcp_timed_out {
            Outcome::Skipped("smaller size timed out")
        } else {
            measure("plan-gcp", runs, timeout, &logs, &success, &|| {
                iw(&["plan", "--provider", "gcp", "--format", "json"])
            })
        };
        gcp_timed_out |= matches!(gcp, Outcome::TimedOut);
        if let Outcome::Failed(e) = &gcp {
            println!("  plan --provider gcp failed: {e}");
        }

        let aerleon_out = aerleon.join("out");
        let aer = match &aclgen {
            None => Outcome::Skipped("not installed"),
            Some(a) => {
                let o = measure("aclgen", runs, timeout, &logs, &zero, &|| {
                    let _ = fs::remove_dir_all(&aerleon_out);
                    let _ = fs::create_dir_all(&aerleon_out);
                    let mut c = Command::new(a);
                    c.arg("--base_directory")
                        .arg(aerleon.join("policies"))
                        .arg("--definitions_directory")
                        .arg(aerleon.join("def"))
                        .arg("--output_directory")
                        .arg(&aerleon_out);
                    c
                });
                // aclgen logs a failed policy and may still exit 0: count what it wrote
                let rendered = fs::read_dir(&aerleon_out).map_or(0, |d| d.count());
                if matches!(o, Outcome::Done { .. }) && rendered != estate::DEPLOYMENTS.len() {
                    Outcome::Failed(format!(
                        "rendered {rendered} of {} policies; stderr ends:\n{}",
                        estate::DEPLOYMENTS.len(),
                        tail(&logs.join("aclgen.err"), 15)
                    ))
                } else {
                    o
                }
            }
        };
        if let Outcome::Failed(e) = &aer {
            println!("  aclgen failed: {e}");
        }

        let replay = if records == 0 {
            "–".to_string()
        } else if replay_timed_out {
            "– (smaller size timed out)".to_string()
        } else {
            let log = root.join("vpc-flow.log");
            let t = Instant::now();
            estate
                .write_aws_flow_log(&log, records, seed)
                .expect("write flow log");
            println!(
                "  flow log: {records} records, {:.0} MiB, written in {}",
                fs::metadata(&log).map_or(0, |m| m.len()) as f64 / (1 << 20) as f64,
                secs(t.elapsed())
            );
            let out = logs.join("replay.out");
            let r = run(
                &iw(&[
                    "simulate",
                    "--provider",
                    "aws",
                    "--format",
                    "json",
                    "--flows",
                    log.to_str().expect("utf-8 temp path"),
                    "--flow-format",
                    "aws-vpc",
                ]),
                &out,
                &logs.join("replay.err"),
                timeout,
            )
            .expect("run simulate");
            let _ = fs::remove_file(&log);
            if r.timed_out {
                replay_timed_out = true;
                format!("> {} s", timeout.as_secs())
            } else if !success(r.code) {
                println!(
                    "  replay failed: exit {:?}; stderr ends:\n{}",
                    r.code,
                    tail(&logs.join("replay.err"), 15)
                );
                "error".into()
            } else {
                let v: serde_json::Value =
                    serde_json::from_str(&fs::read_to_string(&out).unwrap_or_default())
                        .unwrap_or_default();
                let rp = &v["replay"];
                let millis = rp["millis"].as_u64().unwrap_or(0).max(1);
                let read = rp["records"].as_u64().unwrap_or(0);
                println!(
                    "  replay: {read} records read, {} checked, {} unattributed, {} outside, {} mismatches, {} drift; replay {} ms; simulate wall {} (plan of 6 AWS targets included), {:.0} MiB",
                    rp["checked"], rp["unattributed"], rp["outside"], rp["mismatches"], rp["drift"],
                    millis, secs(r.wall), r.maxrss_kib as f64 / 1024.0
                );
                format!("{:.0} k/s", read as f64 / (millis as f64 / 1e3) / 1e3)
            }
        };

        let load_end = loadavg();
        println!("  load {load_start} → {load_end}");
        rows.push(Row {
            flows: n,
            targets: summary
                .as_ref()
                .map_or("–".into(), |s| s.targets.to_string()),
            classes_per_target: summary.as_ref().map_or("–".into(), |s| {
                format!("{:.2} M", s.classes as f64 / s.targets.max(1) as f64 / 1e6)
            }),
            plan,
            gcp,
            aerleon: aer,
            replay,
            load_start,
            load_end,
        });
        if keep {
            println!("  kept {}", tmp.keep().display());
        }
    }

    println!("\n| flows | targets | classes/target | plan wall (median) | plan peak MiB | GCP-only plan | Aerleon GCE (aclgen) | Aerleon peak MiB | ratio plan/Aerleon | ratio GCP-only/Aerleon | replay records/s | load start | load end |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.flows,
            r.targets,
            r.classes_per_target,
            r.plan.wall(),
            r.plan.mib(),
            r.gcp.wall(),
            r.aerleon.wall(),
            r.aerleon.mib(),
            ratio(&r.plan, &r.aerleon),
            ratio(&r.gcp, &r.aerleon),
            r.replay,
            r.load_start,
            r.load_end
        );
    }
}
