//! `--state live` on AWS, end to end, against the moto emulator on loopback (cargo feature
//! `live`). scripts/test.sh installs moto, starts it on a free port and exports
//! `INTENTWALL_TEST_MOTO` (its URL) and `INTENTWALL_TEST_PYTHON` (the venv's interpreter).
//!
//! Each test works in its own accounts (STS AssumeRole into an account gives that account's
//! own state in moto), so the tests share one server and run in parallel. Each has its own
//! proxy in front of moto (tests/live/proxy.py) that counts the mutating calls independently
//! of intentwall and injects faults. State is set up and edited by hand through boto3
//! (tests/live/fixture.py), never through intentwall.
//!
//! The estate is the example intents on AWS only, in three VPCs over two accounts and three
//! regions, with one change for moto: moto counts a group's IPv4 and IPv6 rules against one
//! limit of 60 where AWS counts each family apart, so the IPv6 half of the SSH blocklist (48
//! rules once subtracted from ::/0) is left out.
#![cfg(feature = "live")]

mod common;

use common::live::{self, applied, Served};
use common::{code, copy_dir, root, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

/// The emulator's URL, or `None` (the test is skipped) when the test command did not start
/// it; under CI that is a failure.
fn moto() -> Option<String> {
    match std::env::var("INTENTWALL_TEST_MOTO") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var_os("CI").is_some() => {
            panic!("INTENTWALL_TEST_MOTO is not set: scripts/test.sh starts moto for these tests")
        }
        _ => {
            eprintln!("skipping: no moto (run through scripts/test.sh)");
            None
        }
    }
}

fn python() -> PathBuf {
    std::env::var_os("INTENTWALL_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/moto-venv/bin/python"))
}

/// The counting, fault-injecting proxy in front of moto; killed on drop.
type Proxy = Served;

impl Proxy {
    fn start(upstream: &str, faults: &[&str]) -> Proxy {
        let mut args = vec!["--upstream", upstream];
        args.extend(faults);
        Served::spawn(python(), &root().join("tests/live/proxy.py"), args)
    }

    /// Mutating calls that reached the emulator so far.
    fn mutating(&self) -> u64 {
        self.counts()["mutating"].as_u64().unwrap()
    }

    /// What the proxy counted: actions by name, mutating calls, paginated answers.
    fn counts(&self) -> Value {
        let (status, v) = self.request("GET", "/__counts", &[], None);
        assert_eq!(status, 200, "{v}");
        v
    }
}

/// Run the boto3 fixture against the emulator.
fn fixture(endpoint: &str, args: &[&str]) -> Value {
    let o = Command::new(python())
        .arg(root().join("tests/live/fixture.py"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .expect("run the fixture");
    assert!(o.status.success(), "fixture {args:?}: {}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("the fixture prints JSON")
}

/// The estate of one test: intents placed in VPCs made for it, in its own two accounts.
struct Estate {
    dir: tempfile::TempDir,
    moto: String,
    /// (deployment, account, region, vpc)
    targets: Vec<(String, String, String, String)>,
}

impl Estate {
    /// `n` makes the test's two accounts, unique to this run too (`2`, five digits of the
    /// process id, `n`, `0001`/`0002`), so a long-lived emulator's earlier state never shows.
    fn new(moto: &str, n: u8) -> Estate {
        let run = std::process::id() % 100_000;
        let a = format!("2{run:05}{n:02}0001");
        let b = format!("2{run:05}{n:02}0002");
        let plan = [
            ("us", &a, "us-east-1", "10.10.0.0/16"),
            ("eu", &b, "eu-west-1", "10.40.0.0/16"),
            ("ap", &a, "eu-west-1", "10.70.0.0/16"),
        ];
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&root().join("intents"), &dir.path().join("intents"));
        std::fs::create_dir(dir.path().join("snapshots")).unwrap();
        let mut targets = Vec::new();
        let mut yaml = String::from("version: 1\ndeployments:\n");
        let original = std::fs::read_to_string(root().join("intents/intentwall.yaml")).unwrap();
        for (dep, account, region, cidr) in plan {
            let v = fixture(moto, &["vpc", account, region, cidr]);
            let vpc = v["vpc"].as_str().unwrap().to_string();
            // the example's cidr6 of the deployment
            let cidr6 = original
                .split(&format!("\n  {dep}:\n"))
                .nth(1)
                .and_then(|s| s.lines().find(|l| l.trim_start().starts_with("cidr6:")))
                .map(|l| l.trim().to_string())
                .unwrap();
            yaml.push_str(&format!(
                "  {dep}:\n    aws:\n      account: \"{account}\"\n      region: {region}\n      \
                 vpc: {vpc}\n      role: \"arn:aws:iam::{account}:role/intentwall\"\n      \
                 cidr: {cidr}\n      {cidr6}\n"
            ));
            targets.push((dep.into(), account.clone(), region.into(), vpc));
        }
        let intents = dir.path().join("intents");
        std::fs::write(intents.join("intentwall.yaml"), yaml).unwrap();
        // AWS only: drop the other clouds' addresses
        let groups = std::fs::read_to_string(intents.join("groups.yaml")).unwrap();
        let groups: String = groups
            .lines()
            .map(|l| match l.find(", azure: [") {
                Some(i) => format!("{} }}", &l[..i]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(intents.join("groups.yaml"), groups + "\n").unwrap();
        let nets = std::fs::read_to_string(intents.join("networks.yaml")).unwrap();
        let nets = nets.replace(
            "[192.0.2.128/25, \"2001:db8:666::/48\"]",
            "[192.0.2.128/25]",
        );
        assert!(nets.contains("blocklist:      [192.0.2.128/25]"));
        std::fs::write(intents.join("networks.yaml"), nets).unwrap();
        Estate {
            dir,
            moto: moto.to_string(),
            targets,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Run `intentwall --state live ARGS` against `endpoint`.
    fn iw(&self, endpoint: &str, args: &[&str]) -> Output {
        self.command(endpoint, args)
            .output()
            .expect("run intentwall")
    }

    fn command(&self, endpoint: &str, args: &[&str]) -> Command {
        live::command(
            self.path(),
            &[
                ("AWS_ENDPOINT_URL", endpoint),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
            ],
            &["AWS_PROFILE"],
            args,
        )
    }

    /// The groups of a target's VPC, as boto3 sees them.
    fn groups(&self, i: usize) -> Value {
        let (_, account, region, vpc) = &self.targets[i];
        fixture(&self.moto, &["groups", account, region, vpc])["SecurityGroups"].clone()
    }

    fn plan_code(&self, endpoint: &str) -> i32 {
        live::plan_code(&self.iw(endpoint, &["plan"]))
    }

    fn apply(&self, endpoint: &str) -> Output {
        self.iw(endpoint, &["apply", "--auto-approve"])
    }
}

fn group<'a>(groups: &'a Value, name: &str) -> &'a Value {
    groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["GroupName"] == name)
        .unwrap_or_else(|| panic!("no group {name}"))
}

#[test]
fn plan_apply_plan_converges_across_accounts_and_regions_and_leaves_others_alone() {
    let Some(moto) = moto() else { return };
    let e = Estate::new(&moto, 1);
    let (_, account, region, vpc) = e.targets[0].clone();
    let hand = fixture(&moto, &["sg", &account, &region, &vpc, "hand-made"]);
    let before = e.groups(0);
    let proxy = Proxy::start(&moto, &[]);

    let t = Instant::now();
    assert_eq!(e.plan_code(&proxy.url), 2, "a fresh VPC has changes");
    let plan_time = t.elapsed();
    let t = Instant::now();
    let o = e.apply(&proxy.url);
    let apply_time = t.elapsed();
    applied(&o);
    let first = proxy.mutating();
    assert!(
        first > 300,
        "the first apply writes every rule: {first} calls"
    );
    assert_eq!(e.plan_code(&proxy.url), 0, "plan after apply is empty");

    // a second apply makes no mutating call at all (counted by the proxy, not by us)
    let t = Instant::now();
    let o = e.apply(&proxy.url);
    let again_time = t.elapsed();
    applied(&o);
    assert_eq!(proxy.mutating(), first, "the second apply wrote something");
    // figures for the record (seen with --nocapture), not asserted: timing is the machine's
    eprintln!(
        "live aws, 3 targets on moto: plan {plan_time:?}, first apply {apply_time:?} \
         ({first} mutating calls: {}), second apply {again_time:?} (0 calls)",
        proxy.counts()["actions"]
    );
    assert!(text(&o.stdout).contains("NoChanges"), "{}", text(&o.stdout));

    // the hand-made group and the VPC's default group are exactly as they were
    let after = e.groups(0);
    for name in ["hand-made", "default"] {
        assert_eq!(
            group(&after, name),
            group(&before, name),
            "{name} was touched"
        );
    }
    assert_eq!(group(&after, "hand-made")["GroupId"], hand["group"]);
    // every managed group is tagged and owned by this account
    let iw: Vec<&Value> = after
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["GroupName"].as_str().unwrap().starts_with("iw-"))
        .collect();
    assert!(iw.len() >= 10);
    for g in iw {
        assert_eq!(g["OwnerId"], account.as_str());
        assert!(g["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["Key"] == "managed-by" && t["Value"] == "intentwall"));
    }

    // `snapshot` records the live state; planning against the recording changes nothing
    let o = e.iw(&proxy.url, &["snapshot", "--snapshots", "recorded"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    for (dep, ..) in &e.targets {
        assert!(e.path().join(format!("recorded/{dep}/aws.json")).is_file());
    }
    let o = common::iw(e.path(), &["plan", "--snapshots", "recorded"]);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
}

#[test]
fn drift_inside_a_managed_group_is_repaired() {
    let Some(moto) = moto() else { return };
    let e = Estate::new(&moto, 2);
    assert_eq!(code(&e.apply(&moto)), 0);
    let (_, account, region, vpc) = e.targets[1].clone();
    // a rule added by hand to an owned group, and one of its rules removed by hand
    fixture(
        &moto,
        &[
            "authorize",
            &account,
            &region,
            &vpc,
            "iw-web",
            "2222",
            "203.0.113.0/24",
        ],
    );
    fixture(&moto, &["revoke-one", &account, &region, &vpc, "iw-db"]);
    let o = e.iw(&moto, &["plan"]);
    assert_eq!(code(&o), 2);
    let plan = text(&o.stdout);
    assert!(plan.contains("- sg-rule iw-web"), "{plan}");
    assert!(plan.contains("+ sg-rule iw-db"), "{plan}");
    assert_eq!(code(&e.apply(&moto)), 0);
    assert_eq!(e.plan_code(&moto), 0);
    let web = e.groups(1);
    let web = group(&web, "iw-web").to_string();
    assert!(!web.contains("2222"), "the hand-added rule is still there");
}

#[test]
fn throttling_on_every_third_call_still_converges() {
    let Some(moto) = moto() else { return };
    let e = Estate::new(&moto, 3);
    let proxy = Proxy::start(&moto, &["--throttle-every", "3"]);
    let o = e.apply(&proxy.url);
    applied(&o);
    assert_eq!(e.plan_code(&proxy.url), 0);
}

#[test]
fn a_region_failing_mid_apply_fails_alone_and_a_rerun_converges() {
    let Some(moto) = moto() else { return };
    let e = Estate::new(&moto, 4);
    // eu-west-1 (eu and ap) fails after 20 writes; us-east-1 is unaffected
    let proxy = Proxy::start(&moto, &["--fail-region", "eu-west-1", "--fail-after", "20"]);
    let o = e.apply(&proxy.url);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    let report = text(&o.stdout);
    assert!(report.contains("us / aws: Applied"), "{report}");
    assert!(
        report.contains("eu / aws: Failed") || report.contains("ap / aws: Failed"),
        "{report}"
    );
    assert!(report.contains("InternalError"), "{report}");
    // without the fault, a re-run finishes the job
    assert_eq!(e.plan_code(&moto), 2);
    let o = e.apply(&moto);
    applied(&o);
    assert_eq!(e.plan_code(&moto), 0);
}

#[test]
fn killed_mid_apply_then_rerun_converges() {
    let Some(moto) = moto() else { return };
    let e = Estate::new(&moto, 5);
    let proxy = Proxy::start(&moto, &["--delay-mutations", "15"]);
    live::kill_mid_apply(
        e.command(&proxy.url, &["apply", "--auto-approve"]),
        || proxy.mutating(),
        40,
    );
    assert_eq!(e.plan_code(&moto), 2, "a killed apply leaves work to do");
    let o = e.apply(&moto);
    applied(&o);
    assert_eq!(e.plan_code(&moto), 0);
}

#[test]
fn credentials_for_another_account_are_refused_before_any_call() {
    let Some(moto) = moto() else { return };
    let e = Estate::new(&moto, 6);
    // the role is in one account, the placement says another: the identity check stops it
    let intents = e.path().join("intents/intentwall.yaml");
    let y = std::fs::read_to_string(&intents).unwrap();
    let (_, a, ..) = &e.targets[0];
    let y = y.replacen(
        &format!("role: \"arn:aws:iam::{a}:"),
        "role: \"arn:aws:iam::999999999999:",
        1,
    );
    std::fs::write(&intents, y).unwrap();
    let proxy = Proxy::start(&moto, &[]);
    let o = e.iw(&proxy.url, &["plan"]);
    assert_eq!(code(&o), 1);
    let err = text(&o.stderr);
    assert!(
        err.contains("the credentials are for account 999999999999"),
        "{err}"
    );
    assert!(
        err.contains(&format!("the placement is account {a}")),
        "{err}"
    );
    let o = e.apply(&proxy.url);
    assert_eq!(code(&o), 1);
    assert_eq!(proxy.mutating(), 0);
}

#[test]
fn paginated_listings_are_read_to_the_last_page() {
    let Some(moto) = moto() else { return };
    let e = Estate::new(&moto, 7);
    // two items per page: a VPC of a dozen groups takes six pages to list
    let proxy = Proxy::start(&moto, &["--paginate", "2"]);
    let o = e.apply(&proxy.url);
    applied(&o);
    assert_eq!(e.plan_code(&proxy.url), 0, "a page was missed");
    let counts = proxy.counts();
    let lists = counts["actions"]["DescribeSecurityGroups"]
        .as_u64()
        .unwrap();
    let pages = counts["pages"].as_u64().unwrap();
    assert!(pages >= lists && lists > 0);
    // more requests than listings would need without pages: the paginator followed tokens
    assert!(lists >= 4 * 6, "{counts}");
}

#[test]
fn bootstrap_creates_each_accounts_role_once_and_then_changes_nothing() {
    let Some(moto) = moto() else { return };
    let e = Estate::new(&moto, 8);
    let proxy = Proxy::start(&moto, &[]);
    let job = "arn:aws:iam::123456789012:role/intentwall-job";
    let boot = |extra: &[&str]| {
        let mut args = vec!["bootstrap", "aws", "--trust", job, "--via-role", "admin"];
        args.extend_from_slice(extra);
        e.iw(&proxy.url, &args)
    };
    // a dry run shows the diff, writes nothing, exits 2
    let o = boot(&["--dry-run"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    for account in [&e.targets[0].1, &e.targets[1].1] {
        let line = format!("+ create role arn:aws:iam::{account}:role/intentwall");
        assert!(text(&o.stdout).contains(&line), "{}", text(&o.stdout));
    }
    assert_eq!(proxy.mutating(), 0);
    // the real run: one role per account (two accounts), two calls each
    let o = boot(&[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(proxy.mutating(), 4);
    // the role holds the least-privilege policy of that account's placements only
    let (_, a, region, vpc) = &e.targets[0];
    let role = fixture(&moto, &["role", a, region, "intentwall"]);
    let policy = role["policy"].to_string();
    assert!(
        policy.contains("ec2:AuthorizeSecurityGroupIngress"),
        "{policy}"
    );
    assert!(policy.contains(vpc.as_str()), "{policy}");
    assert!(
        !policy.contains(&e.targets[1].3),
        "another account's VPC is in the policy"
    );
    assert!(role["trust"].to_string().contains(job));
    // again: nothing differs, nothing is written
    let o = boot(&[]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        text(&o.stdout).matches("no changes").count(),
        2,
        "{}",
        text(&o.stdout)
    );
    assert_eq!(proxy.mutating(), 4);
    // another principal: only the trust policies change
    let o = e.iw(
        &proxy.url,
        &[
            "bootstrap",
            "aws",
            "--trust",
            "arn:aws:iam::123456789012:role/other",
            "--via-role",
            "admin",
        ],
    );
    assert_eq!(code(&o), 0);
    assert_eq!(
        text(&o.stdout).matches("~ trust policy").count(),
        2,
        "{}",
        text(&o.stdout)
    );
    assert_eq!(proxy.mutating(), 6);
}

#[test]
fn preflight_refuses_an_apply_the_role_may_not_finish_before_any_write() {
    let Some(moto) = moto() else { return };
    let e = Estate::new(&moto, 9);
    // IAM says the role may not revoke egress rules (which a new group's default needs)
    let proxy = Proxy::start(&moto, &["--deny", "ec2:RevokeSecurityGroupEgress"]);
    let o = e.iw(&proxy.url, &["apply", "--auto-approve", "--preflight"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains("preflight"), "{err}");
    assert!(err.contains("ec2:RevokeSecurityGroupEgress"), "{err}");
    assert!(err.contains("us/aws") && err.contains("eu/aws"), "{err}");
    assert_eq!(
        proxy.mutating(),
        0,
        "a write was made before the preflight refusal"
    );
    assert!(
        proxy.counts()["actions"]["SimulatePrincipalPolicy"]
            .as_u64()
            .unwrap()
            >= 3
    );
    // allowed: the same apply goes through
    let proxy = Proxy::start(&moto, &[]);
    let o = e.iw(&proxy.url, &["apply", "--auto-approve", "--preflight"]);
    applied(&o);
    assert_eq!(e.plan_code(&moto), 0);
}

/// A rule naming a customer prefix list is judged by the list's entries as the cloud holds
/// them (DescribeManagedPrefixLists, GetManagedPrefixListEntries): `audit` finds the exposure
/// it opens instead of an "unverifiable" match, `snapshot` records the entries so a plan from
/// the recording is the live plan, and the hand-added rule in an owned group is healed.
#[test]
fn prefix_lists_named_by_rules_are_read_with_their_entries() {
    let Some(moto) = moto() else { return };
    let e = Estate::new(&moto, 10);
    let o = e.apply(&moto);
    applied(&o);
    let (_, account, region, vpc) = e.targets[0].clone();
    let pl = fixture(
        &moto,
        &[
            "pl-rule",
            &account,
            &region,
            &vpc,
            "iw-db",
            "23",
            "198.18.0.0/15",
        ],
    )["list"]
        .as_str()
        .unwrap()
        .to_string();
    let proxy = Proxy::start(&moto, &[]);

    let o = e.iw(
        &proxy.url,
        &["audit", "--format", "json", "--deployment", "us"],
    );
    assert_eq!(
        code(&o),
        3,
        "telnet from the office list is an exposure: {}",
        text(&o.stderr)
    );
    let audit: Value = serde_json::from_slice(&o.stdout).expect("audit json");
    let t = &audit["targets"][0];
    assert_eq!(t["verdict"], serde_json::json!(["drift-wider"]), "{t}");
    assert_eq!(t["regions"]["unverifiable"], 0, "{t}");
    let wider = t["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "wider")
        .expect("a wider difference");
    let src = wider["probe"]["src"]["ip"].as_str().unwrap();
    assert!(
        src.starts_with("198.18.") || src.starts_with("198.19."),
        "{wider}"
    );
    assert_eq!(wider["probe"]["packet"]["port"], 23, "{wider}");
    let actions = &proxy.counts()["actions"];
    assert!(
        actions["DescribeManagedPrefixLists"].as_u64() >= Some(1),
        "{actions}"
    );
    assert!(
        actions["GetManagedPrefixListEntries"].as_u64() >= Some(1),
        "{actions}"
    );

    let o = e.iw(
        &moto,
        &["snapshot", "--snapshots", "recorded", "--deployment", "us"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let recorded: Value =
        serde_json::from_slice(&std::fs::read(e.path().join("recorded/us/aws.json")).unwrap())
            .unwrap();
    let lists = recorded["ManagedPrefixLists"]
        .as_array()
        .expect("the lists are recorded");
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert_eq!(lists[0]["PrefixListId"], pl.as_str());
    assert_eq!(lists[0]["Entries"][0]["Cidr"], "198.18.0.0/15");
    let from_recording = common::iw(
        e.path(),
        &["plan", "--snapshots", "recorded", "--deployment", "us"],
    );
    assert_eq!(code(&from_recording), 2, "{}", text(&from_recording.stderr));
    assert!(
        text(&from_recording.stdout)
            .contains("- sg-rule iw-db: ingress allow tcp/23 from prefix list office-23"),
        "the plan deletes the hand-added rule: {}",
        text(&from_recording.stdout)
    );

    let o = e.apply(&moto);
    applied(&o);
    assert_eq!(e.plan_code(&moto), 0);
    let o = e.iw(&moto, &["audit", "--deployment", "us"]);
    assert_eq!(
        code(&o),
        0,
        "healed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// A group intentwall owns but no intent makes any more, still carried by a network
/// interface: AWS refuses its deletion (`DependencyViolation`, which the emulator never says,
/// so the proxy does). The target fails naming what still uses the group, nothing else of it
/// is undone, and once the group is free a rerun deletes it.
#[test]
fn a_group_still_in_use_is_reported_with_what_uses_it() {
    let Some(moto) = moto() else { return };
    let e = Estate::new(&moto, 11);
    let o = e.apply(&moto);
    applied(&o);
    let (_, account, region, vpc) = e.targets[0].clone();
    let made = fixture(
        &moto,
        &[
            "owned-in-use",
            &account,
            &region,
            &vpc,
            "iw-legacy",
            "10.10.250.0/24",
        ],
    );
    let (group, eni) = (
        made["group"].as_str().unwrap(),
        made["eni"].as_str().unwrap(),
    );
    assert_eq!(
        e.plan_code(&moto),
        2,
        "an owned group no intent makes is deleted"
    );

    let proxy = Proxy::start(
        &moto,
        &["--refuse", "DeleteSecurityGroup:DependencyViolation"],
    );
    let o = e.apply(&proxy.url);
    assert_eq!(code(&o), 1, "{}{}", text(&o.stdout), text(&o.stderr));
    let report = text(&o.stdout);
    let line = report
        .lines()
        .find(|l| l.starts_with("us / aws"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(line.contains("Failed") && line.contains("in use"), "{line}");
    assert!(line.contains(&format!("network interface {eni}")), "{line}");
    assert_eq!(proxy.counts()["refused"], 1);
    assert!(
        e.groups(0)
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["GroupId"] == group),
        "the refused group is still there"
    );

    // the interface gone (here: the emulator does not enforce it), a rerun deletes the group
    let o = e.apply(&moto);
    applied(&o);
    assert!(!e
        .groups(0)
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["GroupId"] == group));
    assert_eq!(e.plan_code(&moto), 0);
}
