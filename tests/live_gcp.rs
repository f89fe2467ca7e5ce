//! `--state live` on GCP, end to end, against the stateful Compute fake on loopback
//! (tests/live/gcp_fake.py, Python 3 standard library only; cargo feature `live`).
//!
//! Each test starts its own fake (its own projects and networks), so the tests run in
//! parallel. The fake validates every request body against the Compute schema subset copied
//! to tests/live/, answers Operations that stay RUNNING for a few polls, counts mutating calls
//! independently of intentwall, and injects faults. State is set up and edited "by hand"
//! through the fake's `/__admin` paths, never through intentwall.
//!
//! The estate is the example intents with their GCP placements only (three projects, one
//! network each).
#![cfg(feature = "live")]

mod common;

use common::live::{self, applied, Served};
use common::{code, copy_dir, root, text};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const PLACES: [(&str, &str, &str); 3] = [
    ("us", "acme-prod-us", "prod-us"),
    ("eu", "acme-prod-eu", "prod-eu"),
    ("ap", "acme-prod-ap", "prod-ap"),
];

fn python() -> String {
    std::env::var("INTENTWALL_TEST_PYTHON3").unwrap_or_else(|_| "python3".into())
}

/// The fake, serving the networks of [`PLACES`] and a second network in each project whose
/// rules are never ours; killed on drop.
type Fake = Served;

impl Fake {
    fn start(faults: &[&str]) -> Fake {
        let mut args: Vec<String> = Vec::new();
        for (_, project, network) in PLACES {
            args.extend(["--network".into(), format!("{project}/{network}")]);
            args.extend(["--network".into(), format!("{project}/other")]);
        }
        args.extend(faults.iter().map(|f| f.to_string()));
        Served::spawn(python(), &root().join("tests/live/gcp_fake.py"), args)
    }

    fn http(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.request(method, path, &[], body)
    }

    fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, v) = self.http(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {v}");
        v
    }

    /// What the fake counted: mutating calls, methods, pages, faults.
    fn counts(&self) -> Value {
        self.admin("GET", "/__counts", None)
    }

    fn mutating(&self) -> u64 {
        self.counts()["mutating"].as_u64().unwrap()
    }

    /// Every rule of a project, as stored.
    fn rules(&self, project: &str) -> Vec<Value> {
        self.admin("GET", &format!("/__admin/firewalls/{project}"), None)
            .as_array()
            .unwrap()
            .clone()
    }

    fn rule(&self, project: &str, name: &str) -> Option<Value> {
        self.rules(project).into_iter().find(|r| r["name"] == name)
    }

    /// Create or replace a rule by hand.
    fn put(&self, project: &str, rule: &Value) -> Value {
        self.admin("PUT", &format!("/__admin/firewalls/{project}"), Some(rule))
    }

    fn remove(&self, project: &str, name: &str) {
        self.admin(
            "DELETE",
            &format!("/__admin/firewalls/{project}/{name}"),
            None,
        );
    }

    fn faults(&self, f: Value) {
        self.admin("POST", "/__admin/faults", Some(&f));
    }
}

fn net(project: &str, network: &str) -> String {
    format!("https://www.googleapis.com/compute/v1/projects/{project}/global/networks/{network}")
}

/// The estate of one test: the example intents, GCP placements only.
struct Estate {
    dir: tempfile::TempDir,
}

impl Estate {
    fn new() -> Estate {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&root().join("intents"), &dir.path().join("intents"));
        std::fs::create_dir(dir.path().join("snapshots")).unwrap();
        let intents = dir.path().join("intents");
        let original = std::fs::read_to_string(intents.join("intentwall.yaml")).unwrap();
        let mut yaml = String::from("version: 1\ndeployments:\n");
        for (dep, ..) in PLACES {
            // the example's gcp block of the deployment, as written
            let block = original
                .split(&format!("\n  {dep}:\n"))
                .nth(1)
                .and_then(|s| s.split("\n    gcp:\n").nth(1))
                .unwrap();
            let lines: Vec<&str> = block
                .lines()
                .take_while(|l| l.starts_with("      "))
                .collect();
            assert!(lines.len() >= 3, "{block}");
            yaml.push_str(&format!("  {dep}:\n    gcp:\n{}\n", lines.join("\n")));
        }
        std::fs::write(intents.join("intentwall.yaml"), yaml).unwrap();
        // GCP only: drop the other clouds' addresses
        let groups = std::fs::read_to_string(intents.join("groups.yaml")).unwrap();
        let groups: String = groups
            .lines()
            .map(|l| match (l.find("{ aws: ["), l.find("gcp: [")) {
                (Some(a), Some(g)) => format!("{}{{ {}", &l[..a], &l[g..]),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!groups.contains("aws:") && groups.contains("gcp: [10.30.20.0/24]"));
        std::fs::write(intents.join("groups.yaml"), groups + "\n").unwrap();
        Estate { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, fake: &Fake, args: &[&str]) -> Command {
        live::command(
            self.path(),
            &[
                ("INTENTWALL_GCP_ENDPOINT", &fake.url),
                ("INTENTWALL_GCP_POLL_MS", "5"),
                ("INTENTWALL_GCP_BACKOFF_MS", "20"),
            ],
            &["GOOGLE_APPLICATION_CREDENTIALS"],
            args,
        )
    }

    fn iw(&self, fake: &Fake, args: &[&str]) -> Output {
        self.command(fake, args).output().expect("run intentwall")
    }

    fn plan_code(&self, fake: &Fake) -> i32 {
        live::plan_code(&self.iw(fake, &["plan"]))
    }

    fn apply(&self, fake: &Fake) -> Output {
        self.iw(fake, &["apply", "--auto-approve"])
    }
}

/// A rule no intent makes, disabled so it does not change what the network enforces.
fn hand_made(name: &str, network: &str) -> Value {
    json!({
        "name": name,
        "network": network,
        "direction": "INGRESS",
        "priority": 100,
        "sourceRanges": ["198.18.0.0/15"],
        "allowed": [{"IPProtocol": "tcp", "ports": ["2222"]}],
        "disabled": true,
        "description": "made by hand"
    })
}

#[test]
fn the_fakes_own_tests_pass() {
    let o = Command::new(python())
        .arg(root().join("tests/live/gcp_fake_test.py"))
        .output()
        .expect("run python3");
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
}

#[test]
fn plan_apply_plan_converges_and_leaves_others_alone() {
    // operations finish by being polled only (not by the clock), so the count of polls shows
    // every one was waited on
    let fake = Fake::start(&["--settle-ms", "600000"]);
    let e = Estate::new();
    let (_, p, n) = PLACES[0];
    // a hand-made rule, another deployment's rule in this network, a rule of another network
    fake.put(p, &hand_made("allow-legacy-ssh", &net(p, n)));
    fake.put(p, &hand_made("iw-eu-not-ours", &net(p, n)));
    fake.put(p, &hand_made("iw-us-other-network", &net(p, "other")));
    let before = fake.rules(p);

    let t = Instant::now();
    assert_eq!(e.plan_code(&fake), 2, "a fresh network has changes");
    let plan_time = t.elapsed();
    let t = Instant::now();
    let o = e.iw(&fake, &["--log-format", "json", "apply", "--auto-approve"]);
    let apply_time = t.elapsed();
    applied(&o);
    let first = fake.mutating();
    let mut counts = fake.counts();
    let log = counts.as_object_mut().unwrap().remove("log").unwrap();
    assert_eq!(log.as_array().unwrap().len() as u64, first);
    // one audit event per mutating call the fake saw
    let audits = text(&o.stderr)
        .lines()
        .filter(|l| l.contains("\"target\":\"audit\"") && l.contains("cloud write"))
        .count() as u64;
    assert_eq!(audits, first, "{}", text(&o.stderr));
    let mut per_project = Vec::new();
    for (dep, project, network) in PLACES {
        let ours = fake
            .rules(project)
            .iter()
            .filter(|r| {
                r["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("iw-{dep}-"))
            })
            .filter(|r| r["network"] == net(project, network).as_str())
            .count();
        per_project.push((dep, ours));
    }
    eprintln!(
        "first apply: {first} mutating calls ({per_project:?} rules per target), {counts}; \
         plan {plan_time:?}, apply {apply_time:?}"
    );
    assert!(
        first >= 150,
        "the first apply writes every rule: {first} calls"
    );
    assert_eq!(
        counts["methods"]["firewalls.insert"].as_u64().unwrap(),
        first,
        "a fresh network only needs inserts"
    );
    assert!(
        counts["operations_get"].as_u64().unwrap() >= 3 * first,
        "operations were waited on"
    );

    let t = Instant::now();
    assert_eq!(e.plan_code(&fake), 0, "plan after apply is empty");
    let replan = t.elapsed();
    // a second apply makes no mutating call at all (counted by the fake, not by us)
    let t = Instant::now();
    let o = e.apply(&fake);
    applied(&o);
    eprintln!(
        "plan after apply {replan:?}, second apply {:?}",
        t.elapsed()
    );
    assert_eq!(fake.mutating(), first, "the second apply wrote something");
    assert!(text(&o.stdout).contains("NoChanges"), "{}", text(&o.stdout));

    // the rules that are not ours are exactly as they were (ids included)
    let after = fake.rules(p);
    for name in ["allow-legacy-ssh", "iw-eu-not-ours", "iw-us-other-network"] {
        let b = before.iter().find(|r| r["name"] == name).unwrap();
        let a = after.iter().find(|r| r["name"] == name);
        assert_eq!(a, Some(b), "{name} was touched");
    }
    // every managed rule is on the deployment's network and names its flow
    for (dep, project, network) in PLACES {
        let ours: Vec<Value> = fake
            .rules(project)
            .into_iter()
            .filter(|r| {
                r["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("iw-{dep}-"))
            })
            .filter(|r| r["name"] != "iw-us-other-network")
            .collect();
        assert!(ours.len() >= 20, "{dep}: {}", ours.len());
        for r in ours {
            assert_eq!(r["network"], net(project, network).as_str());
            assert!(
                r["description"]
                    .as_str()
                    .unwrap()
                    .starts_with("intentwall:"),
                "{r}"
            );
        }
    }

    // `snapshot` records the live state; planning against the recording changes nothing
    let o = e.iw(&fake, &["snapshot", "--snapshots", "recorded"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    for (dep, ..) in PLACES {
        let f = e.path().join(format!("recorded/{dep}/gcp.json"));
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert!(
            doc.as_array().is_some_and(|a| !a.is_empty()),
            "gcloud's list shape"
        );
    }
    let o = common::iw(e.path(), &["plan", "--snapshots", "recorded"]);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(fake.mutating(), first);
}

#[test]
fn drift_is_repaired_with_patch_put_insert_and_delete() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    applied(&e.apply(&fake));
    let (_, p, n) = PLACES[1];
    let ours: Vec<Value> = fake
        .rules(p)
        .into_iter()
        .filter(|r| r["name"].as_str().unwrap().starts_with("iw-eu-"))
        .collect();
    let ingress: Vec<&Value> = ours
        .iter()
        .filter(|r| r["direction"] == "INGRESS")
        .collect();
    // a priority changed (PATCH repairs it), a field added (PUT clears it), a rule deleted
    // (inserted again), a rule named as ours but made by hand (deleted)
    let mut a = ingress[0].clone();
    a["priority"] = json!(4242);
    fake.put(p, &a);
    let mut b = ingress[1].clone();
    b["destinationRanges"] = json!(["10.60.99.0/24"]);
    fake.put(p, &b);
    let gone = ingress[2]["name"].as_str().unwrap().to_string();
    fake.remove(p, &gone);
    fake.put(p, &hand_made("iw-eu-hand-added", &net(p, n)));
    let before = fake.counts();

    let o = e.iw(&fake, &["plan"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let plan = text(&o.stdout);
    assert!(plan.contains("iw-eu-hand-added"), "{plan}");
    assert!(plan.contains(&gone), "{plan}");
    applied(&e.apply(&fake));
    assert_eq!(e.plan_code(&fake), 0);

    let after = fake.counts();
    let delta = |m: &str| {
        after["methods"][m].as_u64().unwrap_or(0) - before["methods"][m].as_u64().unwrap_or(0)
    };
    assert_eq!(
        (
            delta("firewalls.patch"),
            delta("firewalls.update"),
            delta("firewalls.insert"),
            delta("firewalls.delete")
        ),
        (1, 1, 1, 1),
        "{after}"
    );
    assert_eq!(
        after["mutating"].as_u64().unwrap() - before["mutating"].as_u64().unwrap(),
        4
    );
    let a2 = fake.rule(p, a["name"].as_str().unwrap()).unwrap();
    assert_eq!(a2["priority"], ingress[0]["priority"]);
    assert_eq!(
        a2["id"], ingress[0]["id"],
        "repaired in place, not replaced"
    );
    let b2 = fake.rule(p, b["name"].as_str().unwrap()).unwrap();
    assert!(b2.get("destinationRanges").is_none(), "{b2}");
    assert!(fake.rule(p, &gone).is_some());
    assert!(fake.rule(p, "iw-eu-hand-added").is_none());
}

#[test]
fn throttling_and_a_429_storm_still_converge() {
    let fake = Fake::start(&[
        "--throttle-every",
        "4",
        "--storm-at",
        "30",
        "--storm-len",
        "3",
    ]);
    let e = Estate::new();
    applied(&e.apply(&fake));
    assert!(
        fake.counts()["faults"].as_u64().unwrap() > 20,
        "{}",
        fake.counts()
    );
    assert_eq!(e.plan_code(&fake), 0);
}

#[test]
fn a_project_failing_mid_apply_fails_alone_and_a_rerun_converges() {
    // acme-prod-eu answers 503 to every write after the 20th of the run
    let fake = Fake::start(&["--fail-after", "20", "--fail-project", "acme-prod-eu"]);
    let e = Estate::new();
    let o = e.apply(&fake);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    let report = text(&o.stdout);
    assert!(report.contains("eu / gcp: Failed"), "{report}");
    assert!(report.contains("us / gcp: Applied"), "{report}");
    assert!(report.contains("ap / gcp: Applied"), "{report}");
    assert!(report.contains("backendError"), "{report}");
    assert!(report.contains("compute.firewalls.insert"), "{report}");
    // without the fault, a re-run finishes the job
    fake.faults(json!({"fail_after": null}));
    assert_eq!(e.plan_code(&fake), 2);
    applied(&e.apply(&fake));
    assert_eq!(e.plan_code(&fake), 0);
}

#[test]
fn operations_pending_longer_are_waited_for() {
    // each operation stays RUNNING for 6 polls (never finishing by the clock): the writes are
    // only there once DONE, and the convergence check after the apply reads them
    let fake = Fake::start(&["--op-polls", "6", "--settle-ms", "600000"]);
    let e = Estate::new();
    applied(&e.apply(&fake));
    assert_eq!(e.plan_code(&fake), 0);
    let c = fake.counts();
    assert!(
        c["operations_get"].as_u64().unwrap() >= 7 * c["mutating"].as_u64().unwrap(),
        "{c}"
    );
}

#[test]
fn killed_mid_apply_then_rerun_converges() {
    let fake = Fake::start(&["--delay-mutations", "15", "--settle-ms", "300"]);
    let e = Estate::new();
    live::kill_mid_apply(
        e.command(&fake, &["apply", "--auto-approve"]),
        || fake.mutating(),
        40,
    );
    // operations the killed run left behind finish on their own
    std::thread::sleep(Duration::from_millis(400));
    fake.faults(json!({"delay_mutations": 0}));
    assert_eq!(e.plan_code(&fake), 2, "a killed apply leaves work to do");
    applied(&e.apply(&fake));
    assert_eq!(e.plan_code(&fake), 0);
}

#[test]
fn a_concurrent_edit_between_observe_and_write_is_detected_and_kept() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    applied(&e.apply(&fake));
    let (_, p, _) = PLACES[0];
    // drift to repair, so the apply has something to write
    let victim = fake
        .rules(p)
        .into_iter()
        .find(|r| r["name"].as_str().unwrap().starts_with("iw-us-"))
        .unwrap();
    fake.remove(p, victim["name"].as_str().unwrap());
    // another writer changes one of our rules right after the apply's first listing
    let other = fake
        .rules(p)
        .into_iter()
        .find(|r| r["name"].as_str().unwrap().starts_with("iw-us-"))
        .unwrap();
    let mut edited = other.clone();
    edited["priority"] = json!(4321);
    for k in ["id", "kind", "selfLink", "creationTimestamp"] {
        edited.as_object_mut().unwrap().remove(k);
    }
    fake.admin(
        "POST",
        "/__admin/arm",
        Some(&json!({"project": p, "after_lists": 1, "firewall": edited})),
    );
    let before = fake.mutating();
    let o = e.apply(&fake);
    assert_eq!(code(&o), 1, "{}{}", text(&o.stdout), text(&o.stderr));
    let said = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(said.contains("changed"), "{said}");
    assert_eq!(
        fake.mutating(),
        before,
        "a write was made after the state changed"
    );
    let now = fake.rule(p, other["name"].as_str().unwrap()).unwrap();
    assert_eq!(
        now["priority"], 4321,
        "the other writer's edit was overwritten"
    );
    // the next run sees both, and repairs both
    assert_eq!(e.plan_code(&fake), 2);
    applied(&e.apply(&fake));
    assert_eq!(e.plan_code(&fake), 0);
}

#[test]
fn paginated_listings_are_read_to_the_last_page() {
    let fake = Fake::start(&["--page-size", "7"]);
    let e = Estate::new();
    applied(&e.apply(&fake));
    assert_eq!(e.plan_code(&fake), 0, "a page was missed");
    let c = fake.counts();
    let lists = c["methods"]["firewalls.list"].as_u64().unwrap();
    // three projects of some 60 rules: at least 9 pages per complete listing
    assert!(lists >= 3 * 9, "{c}");
}

#[test]
fn a_missing_network_fails_its_target_without_writing() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    let y = e.path().join("intents/intentwall.yaml");
    let text_ = std::fs::read_to_string(&y).unwrap();
    std::fs::write(&y, text_.replace("network: prod-ap", "network: prod-gone")).unwrap();
    let o = e.iw(&fake, &["plan"]);
    assert_eq!(code(&o), 1);
    let err = text(&o.stderr);
    assert!(
        err.contains("network prod-gone does not exist in project acme-prod-ap"),
        "{err}"
    );
    assert!(err.contains("compute.networks.get"), "{err}");
    assert_eq!(fake.mutating(), 0);
}

#[test]
fn anonymous_credentials_are_only_for_a_loopback_endpoint() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    // a non-loopback endpoint without credentials: ADC is required, and there is none
    let o = e
        .command(&fake, &["plan"])
        .env("INTENTWALL_GCP_ENDPOINT", "http://compute.example.invalid")
        .env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            e.path().join("no-such-file.json"),
        )
        .env("HOME", e.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains("credentials"), "{err}");
    assert_eq!(fake.counts()["methods"], json!({}), "the fake was called");
}

#[test]
fn writes_are_made_before_breaks_denies_first_in_and_last_out() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    applied(&e.apply(&fake));
    let (_, p, n) = PLACES[0];
    let ours: Vec<Value> = fake
        .rules(p)
        .into_iter()
        .filter(|r| r["name"].as_str().unwrap().starts_with("iw-us-"))
        .collect();
    let deny = ours.iter().find(|r| r.get("denied").is_some()).unwrap();
    let allow = ours.iter().find(|r| r.get("allowed").is_some()).unwrap();
    // one deny and one allow to put back, one deny and one allow (ours by name) to remove
    fake.remove(p, deny["name"].as_str().unwrap());
    fake.remove(p, allow["name"].as_str().unwrap());
    fake.put(p, &hand_made("iw-us-hand-allow", &net(p, n)));
    let mut hand_deny = hand_made("iw-us-hand-deny", &net(p, n));
    let o = hand_deny.as_object_mut().unwrap();
    o.remove("allowed");
    o.insert(
        "denied".into(),
        json!([{"IPProtocol": "tcp", "ports": ["2323"]}]),
    );
    fake.put(p, &hand_deny);
    let before = fake.counts()["log"].as_array().unwrap().len();
    applied(&e.apply(&fake));
    let log: Vec<(String, String)> = fake.counts()["log"].as_array().unwrap()[before..]
        .iter()
        .map(|x| {
            (
                x[0].as_str().unwrap().to_string(),
                x[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let s = |a: &str, b: &Value| (a.to_string(), b.as_str().unwrap().to_string());
    assert_eq!(
        log,
        vec![
            s("POST", &deny["name"]),
            s("POST", &allow["name"]),
            s("DELETE", &json!("iw-us-hand-allow")),
            s("DELETE", &json!("iw-us-hand-deny")),
        ]
    );
    assert_eq!(e.plan_code(&fake), 0);
}

/// What the fake was asked through testIamPermissions, in order: (project, permissions
/// sorted).
fn iam_asked(fake: &Fake) -> Vec<(String, Vec<String>)> {
    fake.counts()["iam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let mut p: Vec<String> = x["permissions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
                .collect();
            p.sort();
            (x["project"].as_str().unwrap().to_string(), p)
        })
        .collect()
}

fn iam_calls(fake: &Fake) -> u64 {
    fake.counts()["methods"]["projects.testIamPermissions"]
        .as_u64()
        .unwrap_or(0)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn preflight_with_everything_granted_asks_iam_per_project_then_converges() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    let o = e.iw(&fake, &["apply", "--auto-approve", "--preflight"]);
    applied(&o);
    // one question per target, for exactly what a fresh network's inserts and the reads need
    let mut asked = iam_asked(&fake);
    asked.sort();
    let want = strings(&[
        "compute.firewalls.create",
        "compute.firewalls.list",
        "compute.globalOperations.get",
        "compute.networks.get",
        "compute.networks.updatePolicy",
    ]);
    let mut projects: Vec<String> = PLACES.iter().map(|(_, p, _)| p.to_string()).collect();
    projects.sort();
    assert_eq!(
        asked,
        projects
            .into_iter()
            .map(|p| (p, want.clone()))
            .collect::<Vec<_>>()
    );
    assert!(fake.mutating() >= 150, "{}", fake.counts());
    assert_eq!(
        e.plan_code(&fake),
        0,
        "plan after a preflighted apply is empty"
    );
    // nothing to write: no target is preflighted, nothing is written
    let before = fake.mutating();
    applied(&e.iw(&fake, &["apply", "--auto-approve", "--preflight"]));
    assert_eq!(iam_calls(&fake), 3);
    assert_eq!(fake.mutating(), before);
}

#[test]
fn preflight_names_a_withheld_permission_and_nothing_is_written_anywhere() {
    // IAM holds back the insert permission in one project only: the whole apply stops
    let fake = Fake::start(&["--withhold", "acme-prod-eu/compute.firewalls.create"]);
    let e = Estate::new();
    let o = e.iw(&fake, &["apply", "--auto-approve", "--preflight"]);
    assert_eq!(code(&o), 1, "{}{}", text(&o.stdout), text(&o.stderr));
    let all = text(&o.stderr);
    // the refusal (after the plan, which names every project)
    let err = all
        .split("error: preflight: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{all}"));
    assert!(
        err.starts_with("the identity may not make 1 call(s)"),
        "{err}"
    );
    assert!(
        err.contains(
            "eu/gcp: compute.firewalls.create is not granted on projects/acme-prod-eu; \
             needed to create "
        ),
        "{err}"
    );
    assert!(
        !err.contains("acme-prod-us") && !err.contains("acme-prod-ap"),
        "{err}"
    );
    assert_eq!(fake.mutating(), 0, "a write was made before the refusal");
    assert_eq!(fake.counts()["log"], json!([]));
    assert_eq!(
        iam_calls(&fake),
        3,
        "every target is asked before any write"
    );
    // granted again: the same apply goes through
    fake.faults(json!({"withhold": []}));
    applied(&e.iw(&fake, &["apply", "--auto-approve", "--preflight"]));
    assert_eq!(e.plan_code(&fake), 0);
}

#[test]
fn preflight_refuses_when_iam_cannot_be_asked() {
    let fake = Fake::start(&["--iam-fail", "403"]);
    let e = Estate::new();
    let o = e.iw(&fake, &["apply", "--auto-approve", "--preflight"]);
    assert_eq!(code(&o), 1, "{}{}", text(&o.stdout), text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("cloudresourcemanager.projects.testIamPermissions access denied"),
        "{err}"
    );
    assert!(err.contains("so the preflight refuses"), "{err}");
    assert!(err.contains("HTTP 403"), "{err}");
    assert_eq!(fake.mutating(), 0);
    // a service that keeps failing: the bounded retries are spent, then it refuses
    fake.faults(json!({"iam_fail": 503}));
    let o = e
        .command(&fake, &["apply", "--auto-approve", "--preflight"])
        .env("INTENTWALL_GCP_MAX_ATTEMPTS", "2")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}{}", text(&o.stdout), text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("cloudresourcemanager.projects.testIamPermissions unavailable"),
        "{err}"
    );
    assert_eq!(iam_calls(&fake), 1 + 2, "one 403, then two attempts on 503");
    assert_eq!(fake.mutating(), 0);
    // nothing was written: the plan still has everything to do
    assert_eq!(e.plan_code(&fake), 2);
}

#[test]
fn a_rule_whose_direction_changed_is_deleted_then_inserted_under_its_name() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    applied(&e.apply(&fake));
    let (_, p, _) = PLACES[0];
    let original = fake
        .rules(p)
        .into_iter()
        .find(|r| {
            r["name"].as_str().unwrap().starts_with("iw-us-")
                && r["direction"] == "INGRESS"
                && r.get("sourceTags").is_none()
                && r.get("sourceServiceAccounts").is_none()
        })
        .unwrap();
    let name = original["name"].as_str().unwrap().to_string();
    // by hand, the owned rule becomes an egress rule of the same name
    let mut egress = original.clone();
    let o = egress.as_object_mut().unwrap();
    for k in [
        "id",
        "kind",
        "selfLink",
        "creationTimestamp",
        "sourceRanges",
    ] {
        o.remove(k);
    }
    o.insert("direction".into(), json!("EGRESS"));
    o.insert("destinationRanges".into(), json!(["198.18.0.0/15"]));
    fake.put(p, &egress);
    assert_eq!(fake.rule(p, &name).unwrap()["direction"], "EGRESS");

    let o = e.iw(&fake, &["plan"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&name), "{}", text(&o.stdout));
    let before = fake.counts()["log"].as_array().unwrap().len();
    // preflighted: the replacement needs both the delete and the create permission
    applied(&e.iw(&fake, &["apply", "--auto-approve", "--preflight"]));
    let asked = iam_asked(&fake);
    assert_eq!(
        asked.len(),
        1,
        "only the changed target is asked: {asked:?}"
    );
    assert_eq!(asked[0].0, p);
    for needed in ["compute.firewalls.delete", "compute.firewalls.create"] {
        assert!(asked[0].1.iter().any(|x| x == needed), "{asked:?}");
    }
    // the fake's write log: the old rule deleted, then its successor inserted, nothing else
    let log: Vec<Value> = fake.counts()["log"].as_array().unwrap()[before..].to_vec();
    assert_eq!(log, vec![json!(["DELETE", name]), json!(["POST", name])]);
    let now = fake.rule(p, &name).unwrap();
    assert_eq!(now["direction"], "INGRESS");
    assert_ne!(
        now["id"], original["id"],
        "a new rule, not the old one edited"
    );
    let strip = |r: &Value| {
        let mut r = r.clone();
        for k in ["id", "creationTimestamp"] {
            r.as_object_mut().unwrap().remove(k);
        }
        r
    };
    assert_eq!(
        strip(&now),
        strip(&original),
        "the rule is as the intent makes it"
    );
    assert_eq!(e.plan_code(&fake), 0, "converged");
}

/// The three projects are independent targets: by default they are written side by side,
/// with `--parallelism 1` one after another (a target's own writes never overlap: one writer
/// per target); both converge. The wall times are printed for the record (`--nocapture`).
#[test]
fn targets_are_written_side_by_side_and_one_at_a_time_on_request() {
    for parallelism in ["1", "4"] {
        let fake = Fake::start(&["--delay-mutations", "20"]);
        let e = Estate::new();
        let t = Instant::now();
        applied(&e.iw(
            &fake,
            &["apply", "--auto-approve", "--parallelism", parallelism],
        ));
        let took = t.elapsed();
        let counts = fake.counts();
        let most = counts["most_in_flight"].as_u64().unwrap();
        eprintln!(
            "gcp apply --parallelism {parallelism}: {} mutating calls in {took:.1?}, at most \
             {most} at once",
            counts["mutating"]
        );
        if parallelism == "1" {
            assert_eq!(most, 1, "one target at a time, one write at a time");
        } else {
            assert!(most > 1, "the projects were written one after another");
            assert!(most <= 3, "one writer per target: {most} writes at once");
        }
        assert_eq!(e.plan_code(&fake), 0);
    }
}

/// A write the cloud acknowledges (its operation DONE without error) but does not make is
/// caught: each target is read again after its writes and must equal what they meant, so it
/// fails "did not converge" (exit 1) instead of being reported applied; a rerun makes it.
#[test]
fn a_write_acknowledged_but_not_made_fails_its_target() {
    let fake = Fake::start(&["--lose-mutation", "5"]);
    let e = Estate::new();
    let o = e.apply(&fake);
    assert_eq!(code(&o), 1, "{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(fake.counts()["lost"], 1, "{}", fake.counts());
    let report = text(&o.stdout);
    assert_eq!(
        report.matches("did not converge").count(),
        1,
        "one target lost a write: {report}"
    );
    assert_eq!(report.matches("Applied").count(), 2, "{report}");
    assert_eq!(e.plan_code(&fake), 2, "the lost write is still to do");
    applied(&e.apply(&fake));
    assert_eq!(e.plan_code(&fake), 0);
}
