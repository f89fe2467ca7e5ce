//! `intentwall permissions aws|azure|gcp` on the example estate: the policies are data on
//! stdout, scoped to the intents' placements; snapshots pin them.
#![cfg(all(feature = "aws", feature = "azure", feature = "gcp"))]

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn iw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_intentwall"))
        .current_dir(root())
        .env("INTENTWALL_TODAY", "2026-11-22")
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .expect("run intentwall")
}

fn policy(cloud: &str) -> String {
    let o = iw(&["permissions", cloud, "--intents", "intents"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn aws_iam_policy() {
    let p = policy("aws");
    let v: serde_json::Value = serde_json::from_str(&p).unwrap();
    assert_eq!(v["Version"], "2012-10-17");
    // every mutating statement is conditioned on the owner tag, or on a create action
    for s in v["Statement"].as_array().unwrap() {
        let actions = s["Action"].as_array().unwrap();
        let mutating = actions.iter().any(|a| {
            let a = a.as_str().unwrap();
            !a.starts_with("ec2:Describe")
                && !a.starts_with("ec2:Get")
                && !a.starts_with("sts:")
                && a != "iam:SimulatePrincipalPolicy"
        });
        if mutating && s["Sid"] != "CreateGroupsInIntentVpcs" {
            assert!(s["Condition"].is_object(), "unconditioned: {s}");
        }
    }
    insta::assert_snapshot!("aws", p);
}

#[test]
fn azure_custom_role() {
    let p = policy("azure");
    let v: serde_json::Value = serde_json::from_str(&p).unwrap();
    assert_eq!(v["AssignableScopes"].as_array().unwrap().len(), 3);
    insta::assert_snapshot!("azure", p);
}

#[test]
fn gcp_custom_role() {
    let p = policy("gcp");
    assert!(p.contains("--project=acme-prod-eu"), "{p}");
    insta::assert_snapshot!("gcp", p);
}

#[test]
fn unknown_cloud_and_bad_intents_exit_1() {
    let o = iw(&["permissions", "oracle"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let o = iw(&["permissions", "aws", "--intents", "no-such-dir"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
}
