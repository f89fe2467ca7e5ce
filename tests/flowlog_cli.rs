//! End-to-end tests of `simulate --flows`: flow-log replay through the binary, on a scratch
//! copy of the example estate (intents/ + snapshots/), the clock pinned like tests/cli.rs.
#![cfg(all(feature = "aws", feature = "azure", feature = "gcp"))]

use std::path::Path;
mod common;
use common::*;

fn sample(name: &str) -> String {
    root()
        .join("tests/flowlogs")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// An unmanaged, priority-0 GCP allow of tcp/5432 from anywhere: it widens what the intent
/// allows to `db`.
fn widen_us_gcp(dir: &Path) {
    add_unmanaged_gcp_allow(dir, "hand-made-postgres-anywhere", 5432);
}

#[test]
fn clean_aws_replay_exits_0_with_the_counts() {
    let t = scratch();
    let log = sample("us-aws-vpc.log");
    let o = iw(t.path(), &["simulate", "--flows", &log]);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 0, "{out}\n{}", text(&o.stderr));
    assert!(
        out.contains("flow-log replay:") && out.contains("(aws-vpc)"),
        "{out}"
    );
    for want in [
        "13 records read",
        "2 skipped (NODATA 1, SKIPDATA 1)",
        "1 outside every deployment",
        "2 unattributed",
        "8 checked",
        "0 mismatches",
        "1 drift",
    ] {
        assert!(out.contains(want), "missing `{want}` in\n{out}");
    }
    // the record the log shows accepted but the intent denies is evidence, not a blocker
    assert!(out.contains("us-aws-vpc.log:14:"), "{out}");
    assert!(out.contains("us-aws-vpc.log:13: 172.31.5.5"), "{out}");
}

#[test]
fn every_format_replays_clean_with_the_inferred_format() {
    let t = scratch();
    for (file, fmt, checked) in [
        ("us-azure-nsg.json", "(azure-nsg)", "5 checked"),
        ("us-gcp.jsonl", "(gcp)", "3 checked"),
        ("flows.csv", "(csv)", "6 checked"),
    ] {
        let o = iw(t.path(), &["simulate", "--flows", &sample(file)]);
        let out = text(&o.stdout);
        assert_eq!(code(&o), 0, "{file}: {out}\n{}", text(&o.stderr));
        assert!(out.contains(fmt), "{file}: {out}");
        assert!(out.contains(checked), "{file}: {out}");
        assert!(out.contains("0 mismatches"), "{file}: {out}");
    }
}

#[test]
fn json_output_carries_a_replay_object() {
    let t = scratch();
    let o = iw(
        t.path(),
        &[
            "simulate",
            "--format",
            "json",
            "--provider",
            "azure",
            "--flows",
            &sample("us-azure-nsg.json"),
            "--flow-format",
            "azure-nsg",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v["replay"];
    assert_eq!(r["format"], "azure-nsg");
    assert_eq!(r["records"], 6);
    assert_eq!(r["checked"], 5);
    assert_eq!(r["unattributed"], 1);
    assert_eq!(r["mismatches"], 0);
    assert_eq!(v["format_version"], 1, "the plan JSON is still there");
}

#[test]
fn a_record_the_intent_denies_but_an_unmanaged_rule_allows_blocks_naming_the_line() {
    let t = scratch();
    widen_us_gcp(t.path());
    let o = iw(
        t.path(),
        &[
            "simulate",
            "--deployment",
            "us",
            "--provider",
            "gcp",
            "--flows",
            &sample("us-gcp.jsonl"),
        ],
    );
    let out = text(&o.stdout);
    assert_eq!(code(&o), 3, "{out}\n{}", text(&o.stderr));
    let line = out
        .lines()
        .find(|l| l.contains("us-gcp.jsonl:3: flow-log record"))
        .unwrap_or_else(|| panic!("no finding names the record:\n{out}"));
    assert!(line.contains("[mismatch]"), "{line}");
    assert!(line.contains("hand-made-postgres-anywhere"), "{line}");
    assert!(line.contains("intent says deny"), "{line}");
    assert!(out.contains("1 mismatches"), "{out}");
    // the firewall log shows DENIED for it: the past state agreed with the intent
    assert!(out.contains("0 drift"), "{out}");
}

#[test]
fn a_csv_row_whose_expected_verdict_fails_blocks() {
    let t = scratch();
    let csv = t.path().join("wrong.csv");
    std::fs::write(
        &csv,
        "deployment,provider,src,dst,protocol,port,icmp_type,icmp_code,expected\nus,gcp,54.239.28.85,10.30.20.4,tcp,5432,,,allow\n",
    )
    .unwrap();
    let o = iw(t.path(), &["simulate", "--flows", csv.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 3, "{out}");
    assert!(out.contains("[expectation]"), "{out}");
    assert!(out.contains("wrong.csv:2:"), "{out}");
}

#[test]
fn malformed_logs_exit_1_naming_file_and_line() {
    let t = scratch();
    let o = iw(
        t.path(),
        &["simulate", "--flows", &sample("aws-malformed.log")],
    );
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("aws-malformed.log:3: dstaddr:"), "{err}");
    assert!(o.stdout.is_empty());
    // an AWS text log read as GCP JSON lines fails on its first line
    let o = iw(
        t.path(),
        &[
            "simulate",
            "--flows",
            &sample("us-aws-vpc.log"),
            "--flow-format",
            "gcp",
        ],
    );
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("us-aws-vpc.log:1: json"),
        "{}",
        text(&o.stderr)
    );
    // a missing file and an unknown CSV deployment are errors too
    let o = iw(t.path(), &["simulate", "--flows", "no-such.log"]);
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("no-such.log"));
    let csv = t.path().join("x.csv");
    std::fs::write(
        &csv,
        "deployment,provider,src,dst,protocol,port\nmars,gcp,1.2.3.4,10.30.20.4,tcp,5432\n",
    )
    .unwrap();
    let o = iw(t.path(), &["simulate", "--flows", csv.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("x.csv:2: deployment"),
        "{}",
        text(&o.stderr)
    );
    // --flow-format needs --flows (usage error, exit 1)
    let o = iw(t.path(), &["simulate", "--flow-format", "csv"]);
    assert_eq!(code(&o), 1);
}
