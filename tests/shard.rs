//! `--shard INDEX/COUNT`, end to end: the shards of a run partition the example's targets
//! (every target planned by exactly one shard, a deployment never split), apply writes only
//! its shard's files, an Indexed Job's environment selects the same shard, and bad values are
//! usage errors (exit 1).

mod common;

use common::{code, files, scratch, text, TODAY};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

fn iw_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_intentwall"));
    c.current_dir(dir)
        .env("INTENTWALL_TODAY", TODAY)
        .env_remove("RUST_LOG")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("INTENTWALL_SHARD_COUNT")
        .env_remove("INTENTWALL_SHARD")
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run intentwall")
}

/// The (deployment, provider) targets `plan --format json` prints with these extra arguments.
fn targets(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    let mut args = vec!["plan", "--format", "json"];
    args.extend_from_slice(extra);
    let o = iw_env(dir, &args, env);
    assert!(matches!(code(&o), 0 | 2), "{args:?}: {}", text(&o.stderr));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    plan["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["deployment"].as_str().unwrap().to_string(),
                t["provider"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn shards_partition_the_targets() {
    let t = scratch();
    let all = targets(t.path(), &[], &[]);
    assert!(all.len() >= 3);
    for count in 1..=4u32 {
        let mut seen: BTreeMap<(String, String), u32> = BTreeMap::new();
        let mut shard_of_deployment: BTreeMap<String, u32> = BTreeMap::new();
        for index in 0..count {
            let shard = format!("{index}/{count}");
            for target in targets(t.path(), &["--shard", &shard], &[]) {
                *seen.entry(target.clone()).or_default() += 1;
                let prev = shard_of_deployment.insert(target.0.clone(), index);
                assert!(prev.is_none_or(|p| p == index), "{} split", target.0);
            }
        }
        assert_eq!(
            seen.keys().cloned().collect::<BTreeSet<_>>(),
            all,
            "count {count}"
        );
        assert!(seen.values().all(|&n| n == 1), "count {count}: {seen:?}");
    }
}

#[test]
fn an_indexed_job_environment_selects_the_same_shard() {
    let t = scratch();
    for index in 0..3 {
        let flag = targets(t.path(), &["--shard", &format!("{index}/3")], &[]);
        let i = index.to_string();
        let env = [
            ("JOB_COMPLETION_INDEX", i.as_str()),
            ("INTENTWALL_SHARD_COUNT", "3"),
        ];
        assert_eq!(targets(t.path(), &[], &env), flag, "index {index}");
        // the flag wins over the environment
        let other = format!("{}/3", (index + 1) % 3);
        assert_eq!(
            targets(t.path(), &["--shard", &other], &env),
            targets(t.path(), &["--shard", &other], &[])
        );
    }
    // an Indexed Job pod without a count must not plan everything
    let o = iw_env(t.path(), &["plan"], &[("JOB_COMPLETION_INDEX", "0")]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("INTENTWALL_SHARD_COUNT"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn bad_shards_are_usage_errors() {
    let t = scratch();
    for bad in ["0/0", "3/2", "x", "1", "-1/2", "1/2/3"] {
        let o = iw_env(t.path(), &["plan", &format!("--shard={bad}")], &[]);
        assert_eq!(code(&o), 1, "{bad}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("--shard"),
            "{bad}: {}",
            text(&o.stderr)
        );
        assert!(o.stdout.is_empty(), "{bad}");
        let o = iw_env(t.path(), &["plan"], &[("INTENTWALL_SHARD", bad)]);
        assert_eq!(code(&o), 1, "INTENTWALL_SHARD={bad}");
    }
    let o = iw_env(
        t.path(),
        &["plan"],
        &[
            ("JOB_COMPLETION_INDEX", "3"),
            ("INTENTWALL_SHARD_COUNT", "3"),
        ],
    );
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("not below"), "{}", text(&o.stderr));
    // --deployment outside the shard is a contradiction, not an empty plan
    let home = targets(t.path(), &["--shard", "0/3"], &[]);
    let (inside, _) = home.iter().next().unwrap().clone();
    let all = targets(t.path(), &[], &[]);
    let (outside, _) = all
        .iter()
        .find(|(d, _)| !home.iter().any(|h| &h.0 == d))
        .unwrap();
    assert!(!targets(t.path(), &["--shard", "0/3", "--deployment", &inside], &[]).is_empty());
    let o = iw_env(
        t.path(),
        &["plan", "--shard", "0/3", "--deployment", outside],
        &[],
    );
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("not in --shard 0/3"),
        "{}",
        text(&o.stderr)
    );
    // a plan file's targets were chosen when planning
    let o = iw_env(t.path(), &["plan", "--out", "plan.json"], &[]);
    assert_eq!(code(&o), 2);
    let o = iw_env(t.path(), &["apply", "plan.json", "--shard", "0/2"], &[]);
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("--shard"), "{}", text(&o.stderr));
}

#[test]
fn apply_writes_only_its_shards_files() {
    let t = scratch();
    let before = files(&t.path().join("snapshots"));
    let mine = targets(t.path(), &["--shard", "0/3"], &[]);
    let deployments: BTreeSet<&str> = mine.iter().map(|(d, _)| d.as_str()).collect();
    assert!(!mine.is_empty());
    let o = iw_env(
        t.path(),
        &["apply", "--auto-approve", "--shard", "0/3"],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let after = files(&t.path().join("snapshots"));
    for (path, bytes) in &before {
        let dep = path
            .strip_prefix(t.path().join("snapshots"))
            .unwrap()
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let changed = after.get(path) != Some(bytes);
        assert_eq!(
            changed,
            deployments.contains(dep.as_str()),
            "{}",
            path.display()
        );
    }
}
