//! What the end-to-end tests share: running the binary with a pinned clock, reading its
//! outcome, and scratch copies of the example estate to run mutating commands in.
#![allow(dead_code)] // each test binary uses a subset

pub mod live;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The clock every test runs at (INTENTWALL_TODAY), so exception expiry never flips a test.
pub const TODAY: &str = "2026-11-22";

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `intentwall ARGS` in `dir`.
pub fn iw(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_intentwall"))
        .current_dir(dir)
        .env("INTENTWALL_TODAY", TODAY)
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .expect("run intentwall")
}

/// The exit code.
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

/// Bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A scratch copy of the example estate (intents/ + snapshots/).
pub fn scratch() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&root().join("intents"), &t.path().join("intents"));
    copy_dir(&root().join("snapshots"), &t.path().join("snapshots"));
    t
}

/// Every file under a directory with its bytes, but for the root's lock file: a run takes
/// the lock (creating the file, writing and clearing its holder note) even when it then
/// refuses to write anything.
pub fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.file_name() == Some(std::ffi::OsStr::new(intentwall::backend::lock::LOCK_FILE)) {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

/// Add a hand-made (unmanaged) priority-0 GCP ingress allow of `tcp/<port>` from anywhere to
/// every instance of the `us` network: it outranks intentwall's rules and widens the intent.
pub fn add_unmanaged_gcp_allow(dir: &Path, name: &str, port: u16) {
    let victim = dir.join("snapshots/us/gcp.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&victim).unwrap()).unwrap();
    let list = match doc.as_array_mut() {
        Some(l) => l,
        None => doc["items"].as_array_mut().unwrap(),
    };
    let network = list
        .iter()
        .find_map(|r| r["network"].as_str().map(String::from))
        .unwrap();
    list.push(serde_json::json!({
        "name": name,
        "network": network,
        "direction": "INGRESS",
        "priority": 0,
        "sourceRanges": ["0.0.0.0/0"],
        "allowed": [{"IPProtocol": "tcp", "ports": [port.to_string()]}],
        "description": "added by hand"
    }));
    std::fs::write(&victim, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

/// Change the state a snapshot file records (not just its bytes: staleness follows the
/// normalised state), as a hand edit would: the last object of the document's first non-empty
/// list is dropped (an SG, an NSG, a firewall rule); a document with none is removed.
#[allow(dead_code)]
pub fn change_state(path: &std::path::Path) {
    fn drop_one(v: &mut serde_json::Value) -> bool {
        match v {
            serde_json::Value::Array(a) if !a.is_empty() => {
                a.pop();
                true
            }
            serde_json::Value::Object(m) => m.values_mut().any(drop_one),
            _ => false,
        }
    }
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    if drop_one(&mut doc) {
        std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    } else {
        std::fs::remove_file(path).unwrap();
    }
}
