//! Filesystem safety of the snapshot backend (docs/safety.md), end to end with the real binary
//! on scratch copies of the example estate: writes never leave their root through a symlink,
//! temporary files are exclusive and cleaned after a killed run, modes are kept, one writer
//! per root (a busy lock is an error naming its holder), the last-moment fingerprint
//! re-check, a missing snapshot root is an error, and concurrent applies of different intents
//! always leave exactly one intent's converged state.
#![cfg(all(unix, feature = "aws", feature = "azure", feature = "gcp"))]

use intentwall::backend::lock;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
mod common;
use common::*;

/// stdout and stderr together: apply reports a failed target on stdout, errors go to stderr.
fn said(o: &Output) -> String {
    format!("{}{}", text(&o.stdout), text(&o.stderr))
}

/// A directory outside the snapshot root with one file in it, to point symlinks at.
fn outside(t: &Path) -> std::path::PathBuf {
    let d = t.join("outside");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("keep.txt"), "must stay as it is\n").unwrap();
    d
}

#[test]
fn a_missing_snapshot_root_is_an_error_and_init_creates_it() {
    let t = scratch();
    for args in [
        vec!["plan", "--snapshots", "snapshotz"],
        vec!["plan", "--snapshots", "snapshotz", "--emit", "emitted"],
        vec!["apply", "--auto-approve", "--snapshots", "snapshotz"],
        vec!["simulate", "--snapshots", "snapshotz"],
    ] {
        let o = iw(t.path(), &args);
        assert_eq!(code(&o), 1, "{args:?}: {}", said(&o));
        assert!(
            text(&o.stderr).contains("does not exist"),
            "{args:?}: {}",
            said(&o)
        );
        assert!(text(&o.stderr).contains("--init"), "{args:?}: {}", said(&o));
        assert!(!t.path().join("snapshotz").exists(), "{args:?} created it");
        assert!(!t.path().join("emitted").exists(), "{args:?} emitted");
    }
    // a file where the root should be is no root either
    std::fs::write(t.path().join("afile"), "").unwrap();
    let o = iw(t.path(), &["plan", "--snapshots", "afile"]);
    assert_eq!(code(&o), 1, "{}", said(&o));
    // --init starts from empty state on purpose: every target is new
    let o = iw(t.path(), &["plan", "--snapshots", "fresh", "--init"]);
    assert_eq!(code(&o), 2, "{}", said(&o));
    assert!(text(&o.stdout).contains("no recorded state"));
    assert!(t.path().join("fresh").is_dir());
    let o = iw(
        t.path(),
        &["apply", "--auto-approve", "--snapshots", "fresh2", "--init"],
    );
    assert_eq!(code(&o), 0, "{}", said(&o));
    assert_eq!(code(&iw(t.path(), &["plan", "--snapshots", "fresh2"])), 0);
    // --init on an existing root changes nothing
    let o = iw(t.path(), &["plan", "--init"]);
    assert_eq!(code(&o), 2, "{}", said(&o));
}

#[test]
fn planted_symlinks_at_temporary_file_names_are_never_followed() {
    let t = scratch();
    let out = outside(t.path());
    let before = files(&out);
    // links with our prefix (a random suffix cannot be guessed, so plant a few) and at the
    // predictable names older builds used
    let us = t.path().join("snapshots/us");
    let mut planted = Vec::new();
    for (i, p) in ["aws", "azure", "gcp"].iter().enumerate() {
        planted.push(us.join(format!(".intentwall-tmp-{i}{i}{i}{i}{i}{i}-{p}.json")));
        for pid in 1..50 {
            planted.push(us.join(format!(".{p}.json.tmp-{pid}")));
        }
    }
    for l in &planted {
        symlink(out.join("keep.txt"), l).unwrap();
    }
    let o = iw(t.path(), &["apply", "--auto-approve"]);
    assert_eq!(code(&o), 0, "{}", said(&o));
    assert_eq!(files(&out), before, "a write went through a planted link");
    // ours are leftovers to clean (the link is removed, not what it points at); the others
    // are not ours to touch
    for l in &planted {
        let ours = l
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".intentwall-tmp-");
        assert_eq!(
            std::fs::symlink_metadata(l).is_ok(),
            !ours,
            "{}",
            l.display()
        );
    }
    assert_eq!(code(&iw(t.path(), &["plan"])), 0);
}

#[test]
fn a_symlinked_snapshot_file_is_refused_and_its_target_untouched() {
    let t = scratch();
    let out = outside(t.path());
    let link = t.path().join("snapshots/us/aws.json");
    std::fs::rename(&link, out.join("aws.json")).unwrap();
    symlink(out.join("aws.json"), &link).unwrap();
    let before = files(&out);
    let o = iw(t.path(), &["apply", "--auto-approve"]);
    assert_eq!(code(&o), 1, "{}", said(&o));
    let msg = said(&o);
    assert!(msg.contains("us / aws: Failed"), "{msg}");
    assert!(
        msg.contains("snapshots/us/aws.json: is a symbolic link"),
        "{msg}"
    );
    assert_eq!(files(&out), before, "written through the link");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // the other targets fail or succeed on their own
    assert!(msg.contains("us / gcp: Applied"), "{msg}");
}

#[test]
fn a_symlinked_directory_inside_the_snapshot_root_is_refused() {
    let t = scratch();
    let out = outside(t.path());
    let eu = t.path().join("snapshots/eu");
    std::fs::rename(&eu, out.join("eu")).unwrap();
    symlink(out.join("eu"), &eu).unwrap();
    let before = files(&out);
    let o = iw(t.path(), &["apply", "--auto-approve"]);
    assert_eq!(code(&o), 1, "{}", said(&o));
    let msg = said(&o);
    for p in ["aws", "azure", "gcp"] {
        assert!(msg.contains(&format!("eu / {p}: Failed")), "{msg}");
    }
    assert!(msg.contains("snapshots/eu: is a symbolic link"), "{msg}");
    assert_eq!(files(&out), before, "written through the directory link");
}

#[test]
fn a_symlink_inside_the_emit_directory_is_refused() {
    let t = scratch();
    let out = outside(t.path());
    let emitted = t.path().join("emitted");
    std::fs::create_dir(&emitted).unwrap();
    // a directory link
    symlink(&out, emitted.join("ap")).unwrap();
    let before = files(&out);
    let o = iw(t.path(), &["plan", "--emit", "emitted"]);
    assert_eq!(code(&o), 1, "{}", said(&o));
    assert!(
        text(&o.stderr).contains("emitted/ap: is a symbolic link"),
        "{}",
        said(&o)
    );
    assert_eq!(files(&out), before);
    // a file link
    std::fs::remove_file(emitted.join("ap")).unwrap();
    std::fs::create_dir(emitted.join("eu")).unwrap();
    symlink(out.join("keep.txt"), emitted.join("eu/gcp.json")).unwrap();
    let o = iw(t.path(), &["plan", "--emit", "emitted"]);
    assert_eq!(code(&o), 1, "{}", said(&o));
    assert!(
        text(&o.stderr).contains("emitted/eu/gcp.json: is a symbolic link"),
        "{}",
        said(&o)
    );
    assert_eq!(files(&out), before);
}

#[test]
fn file_modes_are_kept_and_new_files_get_the_umask_default() {
    let t = scratch();
    let private = t.path().join("snapshots/us/aws.json");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let old = std::fs::read(&private).unwrap();
    std::fs::remove_file(t.path().join("snapshots/ap/gcp.json")).unwrap();
    let o = iw(t.path(), &["apply", "--auto-approve"]);
    assert_eq!(code(&o), 0, "{}", said(&o));
    assert_ne!(
        std::fs::read(&private).unwrap(),
        old,
        "the target had changes"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&private), 0o600);
    // a new file: what File::create gives under the same umask (the child inherits ours)
    let probe = t.path().join("probe");
    std::fs::File::create(&probe).unwrap();
    assert_eq!(mode(&t.path().join("snapshots/ap/gcp.json")), mode(&probe));
}

#[test]
fn leftovers_of_a_killed_run_are_removed_by_the_next_run_that_takes_the_lock() {
    let t = scratch();
    let snaps = t.path().join("snapshots");
    let stale = [
        snaps.join("us/.intentwall-tmp-Ab12Cd-aws.json"),
        snaps.join("eu/.intentwall-tmp-zz9999-gcp.json"),
        snaps.join(".intentwall-tmp-x1y2z3-plan.json"),
    ];
    for s in &stale {
        std::fs::write(s, "{ half a snapsh").unwrap();
    }
    let mine = snaps.join("us/notes.txt");
    std::fs::write(&mine, "not intentwall's").unwrap();
    // plan takes no lock on the snapshot root: it must not touch them
    assert_eq!(code(&iw(t.path(), &["plan"])), 2);
    assert!(stale.iter().all(|s| s.exists()));
    let o = iw(t.path(), &["apply", "--auto-approve"]);
    assert_eq!(code(&o), 0, "{}", said(&o));
    for s in &stale {
        assert!(!s.exists(), "{} left", s.display());
    }
    assert!(text(&o.stderr).contains("interrupted run"), "{}", said(&o));
    assert_eq!(std::fs::read(&mine).unwrap(), b"not intentwall's");
    // and a real run leaves none of its own
    let left: Vec<_> = files(&snaps)
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".intentwall-tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_busy_lock_is_an_error_naming_the_holder_and_nothing_is_written() {
    let t = scratch();
    let snaps = t.path().join("snapshots");
    let before = files(&snaps);
    let held = lock::acquire(&snaps, Duration::ZERO).unwrap();
    let o = iw(
        t.path(),
        &["apply", "--auto-approve", "--lock-timeout", "0"],
    );
    assert_eq!(code(&o), 1, "{}", said(&o));
    let err = text(&o.stderr);
    assert!(err.contains("in use by another intentwall run"), "{err}");
    assert!(
        err.contains(&format!("pid {} on host", std::process::id())),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(files(&snaps), before);
    // waiting: fails only after the timeout
    let start = Instant::now();
    let o = iw(
        t.path(),
        &["apply", "--auto-approve", "--lock-timeout", "1"],
    );
    assert_eq!(code(&o), 1, "{}", said(&o));
    assert!(start.elapsed() >= Duration::from_secs(1));
    // emitting into a locked directory is refused the same way
    let o = iw(
        t.path(),
        &["plan", "--emit", "snapshots", "--lock-timeout", "0"],
    );
    assert_eq!(code(&o), 1, "{}", said(&o));
    assert!(text(&o.stderr).contains("in use"), "{}", said(&o));
    assert_eq!(files(&snaps), before);
    // a waiting run goes on once the holder is done
    let waiter = Command::new(env!("CARGO_BIN_EXE_intentwall"))
        .current_dir(t.path())
        .env("INTENTWALL_TODAY", TODAY)
        .args(["apply", "--auto-approve", "--lock-timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
    let o = waiter.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", said(&o));
    assert_eq!(code(&iw(t.path(), &["plan"])), 0);
}

#[test]
fn any_flock_holder_keeps_intentwall_out() {
    use std::os::unix::io::AsRawFd;
    let t = scratch();
    // held by something else with plain flock(2) and no note
    let f = std::fs::File::create(t.path().join("snapshots").join(lock::LOCK_FILE)).unwrap();
    assert_eq!(
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let o = iw(
        t.path(),
        &["apply", "--auto-approve", "--lock-timeout", "0"],
    );
    assert_eq!(code(&o), 1, "{}", said(&o));
    assert!(
        text(&o.stderr).contains("holder not recorded yet"),
        "{}",
        said(&o)
    );
    drop(f);
    assert_eq!(code(&iw(t.path(), &["apply", "--auto-approve"])), 0);
}

/// The re-check right before a target's write, driven through the library so the change
/// lands exactly between planning and writing, without a race.
#[test]
fn a_target_changed_after_planning_stops_with_nothing_written() {
    use intentwall::apply::{apply_target, ApplyOptions};
    use intentwall::plan::{build, PlanOptions};
    let t = scratch();
    let snaps = t.path().join("snapshots");
    let intent = intentwall::intent::load(
        &t.path().join("intents"),
        &intentwall::intent::LoadOptions {
            today: time::macros::date!(2026 - 11 - 22),
        },
    )
    .unwrap()
    .intent;
    let plan = build(
        &intent,
        &PlanOptions {
            backend: intentwall::backend::Backend::snapshots(snaps.clone()),
            prune_unmanaged: false,
            deployment: None,
            provider: None,
            shard: None,
            keep_after: false,
        },
    )
    .unwrap();
    let opts = ApplyOptions {
        backend: intentwall::backend::Backend::snapshots(snaps.clone()),
        max_deletes: 50,
        parallelism: 4,
        force: false,
        preflight: false,
    };
    let target = |d: &str, p: &str| {
        plan.targets
            .iter()
            .find(|t| t.deployment == d && t.provider.to_string() == p)
            .unwrap()
    };
    // someone edits one target (still valid JSON) and deletes another
    let edited = snaps.join("us/gcp.json");
    change_state(&edited);
    let bytes = std::fs::read(&edited).unwrap();
    std::fs::remove_file(snaps.join("eu/aws.json")).unwrap();
    let e = apply_target(target("us", "gcp"), &intent, &opts).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("us/gcp.json changed under us"), "{msg}");
    assert!(msg.contains("nothing was written"), "{msg}");
    assert_eq!(std::fs::read(&edited).unwrap(), bytes);
    let e = apply_target(target("eu", "aws"), &intent, &opts).unwrap_err();
    assert!(
        format!("{e:#}").contains("now holds no recorded state"),
        "{e:#}"
    );
    assert!(!snaps.join("eu/aws.json").exists());
    // an untouched target still applies
    let n = apply_target(target("us", "aws"), &intent, &opts).unwrap();
    assert!(n > 0);
}

/// Flow `web-from-edge` on another port: a second intent that differs in one flow.
fn other_intents(t: &Path) {
    copy_dir(&t.join("intents"), &t.join("intents-b"));
    let f = t.join("intents-b/flows.yaml");
    let s = std::fs::read_to_string(&f).unwrap();
    let from = "{ name: web-from-edge, from: edge-lb, to: web, services: [tcp/3000] }";
    assert!(s.contains(from));
    std::fs::write(&f, s.replace(from, &from.replace("3000", "3001"))).unwrap();
}

/// The acceptance test of one writer per target: pairs of concurrent `apply --auto-approve`
/// with different intents against one snapshot root. After each pair the state must be
/// exactly one intent's converged state (its plan is empty, the other's is not, both load),
/// that intent's run must have exited 0, and a run of the other intent that exited 0 must
/// have finished before it (so the later successful run replaced its state). Half the pairs
/// wait for the lock, half fail at once when it is busy (then the loser says so and wrote
/// nothing).
#[test]
fn concurrent_applies_of_different_intents_leave_exactly_one_converged_state() {
    let t = scratch();
    other_intents(t.path());
    let spawn = |intents: &str, wait: &str| {
        Command::new(env!("CARGO_BIN_EXE_intentwall"))
            .current_dir(t.path())
            .env("INTENTWALL_TODAY", TODAY)
            .env_remove("RUST_LOG")
            .args([
                "--intents",
                intents,
                "--lock-timeout",
                wait,
                "apply",
                "--auto-approve",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let sets = ["intents", "intents-b"];
    let mut winners = [0usize; 2];
    for round in 0..8 {
        let wait = if round % 2 == 0 { "120" } else { "0" };
        // alternate who starts first
        let order = if round % 4 < 2 { [0, 1] } else { [1, 0] };
        let runs: Vec<_> = order.iter().map(|&i| (i, spawn(sets[i], wait))).collect();
        let done: Vec<(usize, Output, Instant)> = std::thread::scope(|s| {
            let hs: Vec<_> = runs
                .into_iter()
                .map(|(i, c)| {
                    s.spawn(move || {
                        let o = c.wait_with_output().unwrap();
                        (i, o, Instant::now())
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let plans: Vec<i32> = sets
            .iter()
            .map(|s| code(&iw(t.path(), &["--intents", s, "plan"])))
            .collect();
        let ctx = || {
            done.iter()
                .map(|(i, o, _)| format!("--- {} exit {}\n{}", sets[*i], code(o), said(o)))
                .collect::<String>()
        };
        assert!(
            plans.iter().all(|&c| c == 0 || c == 2),
            "round {round}: a snapshot no longer loads: plans {plans:?}\n{}",
            ctx()
        );
        let in_force: Vec<usize> = (0..2).filter(|&i| plans[i] == 0).collect();
        assert_eq!(
            in_force.len(),
            1,
            "round {round}: not exactly one intent's state: plans {plans:?}\n{}",
            ctx()
        );
        let w = in_force[0];
        winners[w] += 1;
        let (_, wo, wend) = done.iter().find(|(i, _, _)| *i == w).unwrap();
        assert_eq!(
            code(wo),
            0,
            "round {round}: the state in force is of a run that failed\n{}",
            ctx()
        );
        let (_, lo, lend) = done.iter().find(|(i, _, _)| *i != w).unwrap();
        match code(lo) {
            0 => assert!(
                lend < wend,
                "round {round}: {} exited 0 after {} but its state is not in force\n{}",
                sets[1 - w],
                sets[w],
                ctx()
            ),
            1 => {
                assert_eq!(wait, "0", "round {round}: a waiting run failed\n{}", ctx());
                assert!(
                    text(&lo.stderr).contains("in use by another intentwall run"),
                    "round {round}\n{}",
                    ctx()
                );
            }
            c => panic!("round {round}: exit {c}\n{}", ctx()),
        }
    }
    eprintln!("states in force per intent over the rounds: {winners:?}");
}
