//! The Kubernetes manifests under jobs/k8s/ pass `scripts/ci/k8s-validate.sh`: strict schema
//! validation against a pinned Kubernetes version, the kustomization's resources, and the
//! job's own conventions (no shell, read-only root, git-sync path, shard count = completions).
//!
//! The validator lives in a venv the script creates (`scripts/test.sh` runs it first). Without
//! the venv this test fails under CI and is skipped, with a note, on a developer's machine:
//! installing needs the network, which a test must not reach for.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn manifests_validate_against_the_pinned_kubernetes_schema() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var_os("K8S_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/k8s-venv"));
    if !venv.join("bin/kubernetes-validate").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: {} has no kubernetes-validate; run scripts/ci/k8s-validate.sh first",
            venv.display()
        );
        eprintln!("skipped: run scripts/ci/k8s-validate.sh once to install the validator");
        return;
    }
    let o = Command::new(root.join("scripts/ci/k8s-validate.sh"))
        .env("K8S_VENV", &venv)
        .output()
        .expect("run scripts/ci/k8s-validate.sh");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
