//! End to end: every entry under `intents/` is read or reported, never skipped, and hostile
//! names never reach a path. Each case breaks a scratch copy of the example estate, runs
//! `plan --out plan.json --emit emitted`, and asserts exit 1, an error naming the entry, and
//! that nothing was written (no plan file, no emitted state, snapshots byte-identical).

mod common;
use common::*;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

/// Run `plan --out --emit` in a broken scratch estate; it must refuse, name `needle` on
/// stderr, and write nothing. Returns stderr.
fn refused(t: &tempfile::TempDir, needle: &str) -> String {
    let before = files(&t.path().join("snapshots"));
    let o = iw(
        t.path(),
        &["plan", "--out", "plan.json", "--emit", "emitted"],
    );
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "stderr: {err}");
    assert!(err.contains(needle), "expected `{needle}` in:\n{err}");
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    assert!(!t.path().join("plan.json").exists());
    assert!(!t.path().join("emitted").exists());
    assert_eq!(files(&t.path().join("snapshots")), before);
    err
}

fn intents(t: &tempfile::TempDir) -> std::path::PathBuf {
    t.path().join("intents")
}

/// True when permission bits do not stop this process (root in CI): then a mode-000 file is
/// still readable and the unreadable cases cannot be staged.
fn privileged(probe: &Path) -> bool {
    std::fs::read(probe).is_ok()
}

#[test]
fn dangling_global_file_symlink() {
    let t = scratch();
    symlink("no-such-file.yaml", intents(&t).join("denies.yaml")).unwrap();
    let e = refused(&t, "denies.yaml: is a dangling symlink");
    assert!(e.contains("no-such-file.yaml"), "{e}");
}

#[test]
fn dangling_region_directory() {
    let t = scratch();
    let eu = intents(&t).join("regions/eu");
    std::fs::remove_dir_all(&eu).unwrap();
    symlink("/nonexistent/eu", &eu).unwrap();
    refused(&t, "regions/eu: is a dangling symlink");
}

#[test]
fn symlink_loops() {
    let t = scratch();
    symlink("loop.yaml", intents(&t).join("loop.yaml")).unwrap();
    refused(&t, "loop.yaml: is a symlink that cannot be followed");
    // a directory link back to its parent is a subdirectory: reported, never walked
    let t = scratch();
    symlink("..", intents(&t).join("regions/eu/again")).unwrap();
    refused(
        &t,
        "regions/eu/again: subdirectories of a region directory are not read",
    );
}

#[test]
fn unreadable_file_and_directory() {
    let t = scratch();
    let f = intents(&t).join("flows.yaml");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
    if privileged(&f) {
        // root (as in CI) reads mode-000 files: the loop cases above cover "cannot follow"
        eprintln!("skipped: running with privileges that ignore permission bits");
        return;
    }
    refused(&t, "flows.yaml: cannot be read");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let eu = intents(&t).join("regions/eu");
    std::fs::set_permissions(&eu, std::fs::Permissions::from_mode(0o000)).unwrap();
    refused(&t, "regions/eu: cannot read directory");
    std::fs::set_permissions(&eu, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn an_intent_file_that_is_not_a_regular_file() {
    // a FIFO would block a reader forever; it is reported without being opened (and, unlike
    // mode 000, this stages "cannot be read as an intent" even when the tests run as root)
    let t = scratch();
    let fifo = intents(&t).join("pipe.yaml");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    refused(&t, "pipe.yaml: is not a regular file");
}

#[test]
fn a_directory_named_like_an_intent_file() {
    let t = scratch();
    std::fs::create_dir(intents(&t).join("more.yaml")).unwrap();
    refused(&t, "more.yaml: is a directory, not an intent file");
}

#[test]
fn any_case_of_yaml_and_yml_is_an_intent_file() {
    for (rel, line) in [
        ("Extra.YAML", "Extra.YAML:2:1"),
        ("extra.yml", "extra.yml:2:1"),
        ("regions/eu/More.Yml", "regions/eu/More.Yml:2:1"),
    ] {
        let t = scratch();
        std::fs::write(intents(&t).join(rel), "version: 1\nbogus: true\n").unwrap();
        refused(&t, &format!("error: {line}: unknown key `bogus`"));
    }
}

#[test]
fn subdirectories_other_than_regions_are_reported() {
    let t = scratch();
    std::fs::create_dir(intents(&t).join("global")).unwrap();
    std::fs::write(intents(&t).join("global/denies.yaml"), "version: 1\n").unwrap();
    std::fs::create_dir_all(intents(&t).join("global/deep/er")).unwrap();
    std::fs::write(intents(&t).join("global/deep/er/allow.YML"), "version: 1\n").unwrap();
    std::fs::write(intents(&t).join("global/notes.md"), "# notes\n").unwrap();
    let e = refused(
        &t,
        "global: subdirectories other than `regions/` are not read, so the intent files in it \
         would be ignored: global/deep/er/allow.YML, global/denies.yaml",
    );
    assert!(e.contains("note: move intent files"), "{e}");
    assert!(!e.contains("notes.md"), "{e}");
    // the same inside a region directory
    let t = scratch();
    std::fs::create_dir(intents(&t).join("regions/eu/old")).unwrap();
    std::fs::write(intents(&t).join("regions/eu/old/gdpr.yaml"), "version: 1\n").unwrap();
    refused(
        &t,
        "subdirectories of a region directory are not read, so the intent files in it would \
         be ignored: regions/eu/old/gdpr.yaml",
    );
}

/// A subdirectory that holds no YAML file at any depth (documentation, diagrams) holds no
/// intent: it is ignored like `README.md` at the root. One that cannot be looked through
/// (a directory symlink) is still an error, since it might.
#[test]
fn subdirectories_without_yaml_are_ignored_unless_they_cannot_be_looked_through() {
    let t = scratch();
    std::fs::create_dir_all(intents(&t).join("docs/img")).unwrap();
    std::fs::write(intents(&t).join("docs/README.md"), "# why\n").unwrap();
    std::fs::write(intents(&t).join("docs/img/graph.svg"), "<svg/>").unwrap();
    std::fs::create_dir(intents(&t).join("docs/.drafts")).unwrap();
    std::fs::write(intents(&t).join("docs/.drafts/x.yaml"), "hidden").unwrap();
    let o = iw(t.path(), &["validate"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    symlink(intents(&t).join("regions"), intents(&t).join("docs/linked")).unwrap();
    refused(&t, "docs/linked is a directory symlink");
}

#[test]
fn hidden_entries_and_other_files_are_ignored() {
    let t = scratch();
    std::fs::write(intents(&t).join("README.md"), "# our intents\n").unwrap();
    std::fs::create_dir(intents(&t).join(".git")).unwrap();
    std::fs::write(intents(&t).join(".flows.yaml.swp"), [0xff, 0xfe]).unwrap();
    let o = iw(t.path(), &["validate"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
}

#[test]
fn intents_path_that_is_a_file() {
    let t = scratch();
    let o = iw(t.path(), &["validate", "--intents", "intents/flows.yaml"]);
    assert_eq!(code(&o), 1);
    let e = text(&o.stderr);
    assert!(e.contains("is a file, not a directory"), "{e}");
    assert!(!e.contains("does not exist"), "{e}");
}

#[test]
fn region_directory_with_an_invalid_name() {
    let t = scratch();
    let d = intents(&t).join("regions/e u");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("x.yaml"), "version: 1\n").unwrap();
    refused(&t, "invalid deployment name `e u`");
}

#[test]
fn a_deployment_named_like_a_path_writes_nothing_anywhere() {
    let t = scratch();
    let root = intents(&t).join("intentwall.yaml");
    let yaml = std::fs::read_to_string(&root)
        .unwrap()
        .replace("\n  eu:\n", "\n  \"../../iw-escape-test\":\n");
    std::fs::write(&root, yaml).unwrap();
    refused(&t, "invalid deployment name `../../iw-escape-test`");
    // where `<snapshots>/../../iw-escape-test/aws.json` would have gone
    assert!(!t.path().parent().unwrap().join("iw-escape-test").exists());
}

#[test]
fn a_plan_file_naming_a_path_is_refused_by_apply() {
    let t = scratch();
    let o = iw(t.path(), &["plan", "--out", "plan.json"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let p = t.path().join("plan.json");
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    plan["targets"][0]["deployment"] = "../../iw-escape-apply".into();
    std::fs::write(&p, serde_json::to_string(&plan).unwrap()).unwrap();
    let before = files(&t.path().join("snapshots"));
    let o = iw(t.path(), &["apply", "plan.json"]);
    let e = text(&o.stderr);
    assert_eq!(code(&o), 1, "{e}");
    assert!(
        // refused as a target the intents do not have (or, past that, by the path builder)
        e.contains("../../iw-escape-apply"),
        "{e}"
    );
    assert_eq!(files(&t.path().join("snapshots")), before);
    assert!(!t.path().parent().unwrap().join("iw-escape-apply").exists());
}

/// A YAML syntax error in the file that declares the deployments is one error, at its
/// file:line:col: not followed by "region directory names no deployment" for every region
/// directory (the deployments are unknown because the file did not parse, not missing).
#[test]
fn a_syntax_error_in_the_deployments_file_is_one_error() {
    let t = scratch();
    let f = intents(&t).join("intentwall.yaml");
    let s = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, s.replacen("  us:\n", "  us: [\n", 1)).unwrap();
    let e = refused(&t, "error: intentwall.yaml:");
    assert_eq!(
        e.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{e}"
    );
    assert!(e.contains("YAML syntax error"), "{e}");
    assert!(!e.contains("no deployment"), "{e}");
}

/// `apply plan.json` from another directory: the plan is fine, but the intents (then the
/// snapshots) it was made from are not where this run looks, and the error says that and how
/// to point at them; with other intents there, it says the plan was made from other intents.
#[test]
fn apply_from_the_wrong_directory_says_what_is_wrong() {
    let t = scratch();
    let o = iw(t.path(), &["plan", "--out", "plan.json"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let other = t.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let o = iw(&other, &["apply", "../plan.json"]);
    let e = text(&o.stderr);
    assert_eq!(code(&o), 1, "{e}");
    assert!(
        e.contains("the intents directory `intents` does not exist here"),
        "{e}"
    );
    assert!(e.contains("--intents DIR"), "{e}");
    assert!(!e.contains("stale"), "{e}");
    copy_dir(&intents(&t), &other.join("intents"));
    let o = iw(&other, &["apply", "../plan.json"]);
    let e = text(&o.stderr);
    assert_eq!(code(&o), 1, "{e}");
    assert!(
        e.contains("the snapshot directory `snapshots` does not exist here"),
        "{e}"
    );
    copy_dir(&t.path().join("snapshots"), &other.join("snapshots"));
    let f = other.join("intents/expect.yaml");
    let s = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, s + "\n# another estate\n").unwrap();
    let before = files(&other.join("snapshots"));
    let o = iw(&other, &["apply", "../plan.json"]);
    let e = text(&o.stderr);
    assert_eq!(code(&o), 1, "{e}");
    assert!(e.contains("the plan was made from other intents"), "{e}");
    assert!(e.contains("the intents in `intents`"), "{e}");
    assert_eq!(files(&other.join("snapshots")), before);
    // and from the right directory it applies
    let o = iw(t.path(), &["apply", "plan.json"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
}

/// A broken `deployments` section (a deployment that is not a mapping, a placement value of
/// the wrong format) is one error: the files naming the deployment do not each add "unknown
/// deployment" or "has no aws placement", and the region directories do not add "names no
/// deployment".
#[test]
fn a_broken_deployment_is_one_error_not_a_cascade() {
    for (from, to, needle) in [
        (
            "  us:\n",
            "  us: 5\n  us-old:\n",
            "deployment `us` must be a mapping",
        ),
        (
            "  eu:\n",
            "  eu: [aws]\n  eu-old:\n",
            "deployment `eu` must be a mapping",
        ),
        (
            "account: \"111122223333\"",
            "account: \"x\"",
            "`account` of the aws placement of deployment `us` is `x`",
        ),
    ] {
        let t = scratch();
        let f = intents(&t).join("intentwall.yaml");
        let s = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, s.replacen(from, to, 1)).unwrap();
        let e = refused(&t, needle);
        assert_eq!(
            e.lines().filter(|l| l.starts_with("error: ")).count(),
            1,
            "{e}"
        );
    }
}
