//! `--state live` on Azure, end to end, against the stateful ARM fake on loopback
//! (tests/live/azure_fake.py, Python standard library only; cargo feature `live`).
//!
//! Each test starts its own fake on a free port, so tests run in parallel and faults stay
//! with their test. The fake validates every request body against the schema subset in
//! tests/live/azure_schema.json, answers as ARM does (etags, long-running operations,
//! SecurityRuleConflict, the six default rules) and counts the mutating calls independently of
//! intentwall. State is set up and edited "by hand" through the same ARM API (requests marked
//! `x-test-hand`, which the fake neither counts nor faults), never through intentwall.
//!
//! The estate is the example intents on Azure only: three deployments, each its own
//! subscription, resource group and location.
#![cfg(feature = "live")]

mod common;

use common::live::{self, applied, Served};
use common::{code, copy_dir, root, text};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

/// The deployments: (name, subscription, resource group, location, nsg).
const TARGETS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "us",
        "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5",
        "rg-prod-us",
        "eastus",
        "nsg-prod-us",
    ),
    (
        "eu",
        "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d",
        "rg-prod-eu",
        "westeurope",
        "nsg-prod-eu",
    ),
    (
        "ap",
        "9d8c7b6a-5f4e-4d3c-a2b1-0f9e8d7c6b5a",
        "rg-prod-ap",
        "southeastasia",
        "nsg-prod-ap",
    ),
];

fn python() -> String {
    std::env::var("INTENTWALL_TEST_PYTHON3").unwrap_or_else(|_| "python3".into())
}

/// The ARM fake, with the resource groups of [`TARGETS`]; killed on drop.
type Fake = Served;

impl Fake {
    fn start(args: &[&str]) -> Fake {
        let fake = Served::spawn(python(), &root().join("tests/live/azure_fake.py"), args);
        for (_, sub, rg, loc, _) in TARGETS {
            fake.http(
                "POST",
                "/__rg",
                Some(json!({"subscription": sub, "resource_group": rg, "location": loc})),
            );
        }
        fake
    }

    /// One request as a hand edit (not counted, never faulted): (status, body).
    fn http(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let hand = [("Authorization", "Bearer hand"), ("x-test-hand", "1")];
        self.request(method, path, &hand, body.as_ref())
    }

    fn arm(&self, i: usize, rest: &str) -> String {
        let (_, sub, rg, ..) = TARGETS[i];
        format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/{rest}?api-version=2024-03-01"
        )
    }

    fn counts(&self) -> Value {
        self.http("GET", "/__counts", None).1
    }

    fn mutating(&self) -> u64 {
        self.counts()["mutating"].as_u64().unwrap()
    }

    fn faults(&self, f: Value) {
        assert_eq!(self.http("POST", "/__faults", Some(f)).0, 200);
    }

    /// The rules of a target's NSG, by name.
    fn rules(&self, i: usize) -> Vec<Value> {
        let nsg = TARGETS[i].4;
        let (s, v) = self.http(
            "GET",
            &self.arm(i, &format!("networkSecurityGroups/{nsg}/securityRules")),
            None,
        );
        assert_eq!(s, 200, "{v}");
        v["value"].as_array().unwrap().clone()
    }

    fn rule(&self, i: usize, name: &str) -> Value {
        let nsg = TARGETS[i].4;
        let (s, v) = self.http(
            "GET",
            &self.arm(
                i,
                &format!("networkSecurityGroups/{nsg}/securityRules/{name}"),
            ),
            None,
        );
        assert_eq!(s, 200, "{name}: {v}");
        v
    }

    fn put_rule(&self, i: usize, nsg: &str, name: &str, props: Value) {
        let (s, v) = self.http(
            "PUT",
            &self.arm(
                i,
                &format!("networkSecurityGroups/{nsg}/securityRules/{name}"),
            ),
            Some(json!({ "properties": props })),
        );
        assert!(s == 200 || s == 201, "hand PUT {name}: {s} {v}");
    }
}

/// The example intents, on Azure only.
struct Estate {
    dir: tempfile::TempDir,
}

impl Estate {
    fn new() -> Estate {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&root().join("intents"), &dir.path().join("intents"));
        let intents = dir.path().join("intents");
        let mut yaml = String::from("version: 1\ndeployments:\n");
        for (dep, sub, rg, loc, nsg) in TARGETS {
            let n = match dep {
                "us" => 2,
                "eu" => 5,
                _ => 8,
            };
            yaml.push_str(&format!(
                "  {dep}:\n    azure:\n      subscription: {sub}\n      resource_group: {rg}\n      \
                 location: {loc}\n      nsg: {nsg}\n      vnet_cidr: 10.{n}0.0.0/16\n      \
                 vnet_cidr6: \"2001:db8:{n}0::/56\"\n"
            ));
        }
        std::fs::write(intents.join("intentwall.yaml"), yaml).unwrap();
        // Azure only: keep the Azure addresses of each deployment
        let groups = std::fs::read_to_string(intents.join("groups.yaml")).unwrap();
        let groups: String = groups
            .lines()
            .map(|l| match (l.find("{ aws: ["), l.find("azure: [")) {
                (Some(a), Some(z)) => {
                    let end = l[z..].find(']').map(|e| z + e + 1).unwrap();
                    format!("{}{{ {} }}", &l[..a], &l[z..end])
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            groups.contains("us: { azure: [10.20.20.0/24] }"),
            "{groups}"
        );
        std::fs::write(intents.join("groups.yaml"), groups + "\n").unwrap();
        std::fs::create_dir(dir.path().join("snapshots")).unwrap();
        Estate { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, fake: &Fake, args: &[&str]) -> Command {
        live::command(
            self.path(),
            &[("INTENTWALL_AZURE_ENDPOINT", &fake.url)],
            &[
                "AZURE_CLIENT_ID",
                "AZURE_TENANT_ID",
                "AZURE_CLIENT_SECRET",
                "AZURE_CREDENTIAL_KIND",
            ],
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

    fn converge(&self, fake: &Fake) {
        live::applied(&self.apply(fake));
        assert_eq!(self.plan_code(fake), 0, "plan after apply is empty");
    }
}

/// An unmanaged rule that narrows nothing the intent allows: telnet from a benchmarking range
/// no flow names.
fn hand_deny() -> Value {
    json!({"protocol": "Tcp", "access": "Deny", "priority": 4000, "direction": "Inbound",
           "sourceAddressPrefix": "198.18.0.0/15", "sourcePortRange": "*",
           "destinationAddressPrefix": "*", "destinationPortRange": "23",
           "description": "telnet, by hand"})
}

#[test]
fn plan_apply_plan_converges_and_leaves_unmanaged_rules_alone() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    // us: the NSG exists with a hand-made rule, and a foreign NSG sits in the resource group
    let (s, _) = fake.http(
        "PUT",
        &fake.arm(0, "networkSecurityGroups/nsg-prod-us"),
        Some(json!({"location": "eastus"})),
    );
    assert_eq!(s, 201);
    fake.put_rule(0, "nsg-prod-us", "deny-telnet", hand_deny());
    let (s, _) = fake.http(
        "PUT",
        &fake.arm(0, "networkSecurityGroups/nsg-hand"),
        Some(json!({"location": "eastus"})),
    );
    assert_eq!(s, 201);
    fake.put_rule(0, "nsg-hand", "iw-not-ours", hand_deny());
    let hand_before = fake.rule(0, "deny-telnet");
    let foreign_before = fake
        .http("GET", &fake.arm(0, "networkSecurityGroups/nsg-hand"), None)
        .1;

    let t = Instant::now();
    assert_eq!(e.plan_code(&fake), 2, "a fresh estate has changes");
    let plan_ms = t.elapsed().as_millis();
    let t = Instant::now();
    let o = e.apply(&fake);
    let apply_ms = t.elapsed().as_millis();
    applied(&o);
    let first = fake.counts();
    let calls = first["mutating"].as_u64().unwrap();
    eprintln!(
        "first apply: {calls} mutating calls {} in {apply_ms} ms; plan {plan_ms} ms",
        first["by_call"]
    );
    let rules: usize = (0..3).map(|i| fake.rules(i).len()).sum();
    assert!(rules > 60, "every target got its rules: {rules}");
    // one PUT per rule (the hand-made one excepted), the two new NSGs, the ASGs: nothing more
    let puts_rules = first["by_call"]["PUT securityrules"].as_u64().unwrap();
    assert_eq!(puts_rules as usize, rules - 1, "{first}");
    assert_eq!(first["by_call"]["PUT networksecuritygroups"], 2, "{first}");
    assert!(
        first["polls"].as_u64().unwrap() >= 2 * calls,
        "every long-running operation was polled to its end: {first}"
    );
    let t = Instant::now();
    assert_eq!(e.plan_code(&fake), 0, "plan after apply is empty");
    eprintln!(
        "plan of the converged estate: {} ms",
        t.elapsed().as_millis()
    );

    // a second apply makes no mutating call at all (counted by the fake, not by us)
    let o = e.apply(&fake);
    applied(&o);
    assert_eq!(fake.mutating(), calls, "the second apply wrote something");
    assert!(text(&o.stdout).contains("NoChanges"), "{}", text(&o.stdout));

    // the hand-made rule and the foreign NSG are exactly as they were (etags included)
    assert_eq!(fake.rule(0, "deny-telnet"), hand_before);
    assert_eq!(
        fake.http("GET", &fake.arm(0, "networkSecurityGroups/nsg-hand"), None)
            .1,
        foreign_before
    );
    // every managed rule is named iw- and carries its flow; ASGs exist for the groups
    for i in 0..3 {
        for r in fake.rules(i) {
            let name = r["name"].as_str().unwrap();
            assert!(name.starts_with("iw-") || name == "deny-telnet", "{name}");
            assert_eq!(r["properties"]["provisioningState"], "Succeeded", "{name}");
        }
    }
    let (s, asg) = fake.http(
        "GET",
        &fake.arm(1, "applicationSecurityGroups/iw-web"),
        None,
    );
    assert_eq!(s, 200, "{asg}");
    assert_eq!(asg["location"], "westeurope");

    // `snapshot` records the live state in the az CLI shape; planning against it changes nothing
    let o = e.iw(&fake, &["snapshot", "--snapshots", "recorded"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(e.path().join("recorded/us/azure.json")).unwrap(),
    )
    .unwrap();
    let nsg = doc
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "nsg-prod-us")
        .unwrap();
    assert_eq!(nsg["resourceGroup"], "rg-prod-us");
    assert!(nsg["securityRules"].as_array().unwrap().len() > 20);
    assert_eq!(nsg["defaultSecurityRules"].as_array().unwrap().len(), 6);
    let o = common::iw(e.path(), &["plan", "--snapshots", "recorded"]);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
}

#[test]
fn drift_of_managed_rules_is_repaired_and_priority_swaps_need_no_conflict() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    e.converge(&fake);
    let before = fake.mutating();
    // eu: one managed rule edited by hand, one deleted, an iw- rule added by hand
    let rules = fake.rules(1);
    let a = rules[0]["name"].as_str().unwrap().to_string();
    let b = rules[1]["name"].as_str().unwrap().to_string();
    let mut edited = rules[0]["properties"].clone();
    edited["description"] = json!("edited by hand");
    fake.put_rule(1, "nsg-prod-eu", &a, edited);
    let (s, _) = fake.http(
        "DELETE",
        &fake.arm(
            1,
            &format!("networkSecurityGroups/nsg-prod-eu/securityRules/{b}"),
        ),
        None,
    );
    assert_eq!(s, 202);
    fake.put_rule(
        1,
        "nsg-prod-eu",
        "iw-sneaky",
        json!({"protocol": "Tcp", "access": "Allow", "priority": 4001,
        "direction": "Inbound", "sourceAddressPrefix": "*", "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "destinationPortRange": "2222"}),
    );
    // us: the two baseline inbound rules (fixed priorities 4095 and 4096) swapped by hand,
    // through a free priority as ARM requires
    let (xn, yn) = ("iw-allow-azure-lb-probes", "iw-default-deny-inbound");
    let (x, y) = (fake.rule(0, xn), fake.rule(0, yn));
    let (px, py) = (
        x["properties"]["priority"].clone(),
        y["properties"]["priority"].clone(),
    );
    assert_eq!((px.as_u64(), py.as_u64()), (Some(4095), Some(4096)));
    let mut xp = x["properties"].clone();
    let mut yp = y["properties"].clone();
    xp["priority"] = json!(4000);
    fake.put_rule(0, "nsg-prod-us", xn, xp.clone());
    yp["priority"] = px.clone();
    fake.put_rule(0, "nsg-prod-us", yn, yp);
    xp["priority"] = py.clone();
    fake.put_rule(0, "nsg-prod-us", xn, xp);

    let o = e.iw(&fake, &["plan"]);
    assert_eq!(code(&o), 2);
    let plan = text(&o.stdout);
    assert!(plan.contains("iw-sneaky"), "{plan}");
    assert!(plan.contains(&b), "{plan}");
    e.converge(&fake);
    let calls = fake.mutating() - before;
    // eu: update a, create b, delete iw-sneaky; us: the swap is two moves and one wait at a
    // free priority (make-before-break), never a SecurityRuleConflict
    assert_eq!(calls, 3 + 3, "{}", fake.counts());
    assert!(fake.rules(1).iter().all(|r| r["name"] != "iw-sneaky"));
    assert_ne!(
        fake.rule(1, &a)["properties"]["description"],
        "edited by hand"
    );
    assert_eq!(fake.rule(0, xn)["properties"]["priority"], px);
    assert_eq!(fake.rule(0, yn)["properties"]["priority"], py);
}

#[test]
fn throttling_is_retried_after_the_time_arm_asks_for() {
    let fake = Fake::start(&["--throttle-every", "15", "--retry-after", "1"]);
    let e = Estate::new();
    e.converge(&fake);
    let c = fake.counts();
    assert!(c["throttled"].as_u64().unwrap() > 5, "{c}");
    assert_eq!(
        c["early"], 0,
        "a throttled call was retried before its Retry-After: {c}"
    );
}

#[test]
fn failures_mid_apply_fail_their_target_and_a_rerun_converges() {
    let fake = Fake::start(&["--fail-after", "30"]);
    let e = Estate::new();
    let o = e.iw(&fake, &["apply", "--auto-approve"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    let out = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(out.contains("Failed"), "{out}");
    assert!(out.contains("InternalServerError"), "{out}");
    assert!(
        out.contains("SecurityRules_CreateOrUpdate") || out.contains("CreateOrUpdate"),
        "{out}"
    );
    // without the fault, a re-run finishes the job
    fake.faults(json!({"fail_after": -1}));
    assert_eq!(e.plan_code(&fake), 2);
    e.converge(&fake);
}

#[test]
fn killed_mid_apply_then_rerun_converges() {
    let fake = Fake::start(&["--delay-ms", "40"]);
    let e = Estate::new();
    live::kill_mid_apply(
        e.command(&fake, &["apply", "--auto-approve"]),
        || fake.mutating(),
        20,
    );
    fake.faults(json!({"delay_ms": 0}));
    assert_eq!(e.plan_code(&fake), 2, "a killed apply leaves work to do");
    e.converge(&fake);
}

#[test]
fn a_concurrent_edit_between_read_and_write_is_detected_and_never_overwritten() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    e.converge(&fake);
    // drift to repair in ap, then someone edits that very rule right before our write
    let r = fake.rules(2)[0].clone();
    let name = r["name"].as_str().unwrap().to_string();
    let mut p = r["properties"].clone();
    p["description"] = json!("drifted");
    fake.put_rule(2, "nsg-prod-ap", &name, p);
    fake.faults(json!({"tamper_next": true}));
    let o = e.apply(&fake);
    assert_eq!(code(&o), 1, "{}{}", text(&o.stdout), text(&o.stderr));
    let out = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(out.contains("PreconditionFailed"), "{out}");
    assert_eq!(fake.counts()["tampered"], name.as_str());
    // the other writer's edit stands
    assert_eq!(
        fake.rule(2, &name)["properties"]["description"],
        "edited concurrently"
    );
    // the next run plans from what is there and repairs it (the rule is ours)
    e.converge(&fake);
    assert_ne!(
        fake.rule(2, &name)["properties"]["description"],
        "edited concurrently"
    );
}

#[test]
fn anonymous_credentials_only_for_a_loopback_endpoint() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    // a non-loopback endpoint without credentials: refused before any request
    let o = e
        .command(&fake, &["plan"])
        .env(
            "INTENTWALL_AZURE_ENDPOINT",
            "https://management.example.invalid",
        )
        .env("AZURE_CREDENTIAL_KIND", "environment")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("credential"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(fake.counts()["requests"], 0);
}

#[test]
fn a_missing_resource_group_is_an_error_not_an_empty_state() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    let y = e.path().join("intents/intentwall.yaml");
    let s = std::fs::read_to_string(&y)
        .unwrap()
        .replace("rg-prod-eu", "rg-gone");
    std::fs::write(&y, s).unwrap();
    let o = e.iw(&fake, &["plan"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("ResourceGroupNotFound"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn operation_status_out_of_the_roles_reach_falls_back_to_polling_the_resources() {
    let fake = Fake::start(&["--deny-operations"]);
    let e = Estate::new();
    e.converge(&fake);
    for i in 0..3 {
        for r in fake.rules(i) {
            assert_eq!(r["properties"]["provisioningState"], "Succeeded", "{r}");
        }
    }
}

// ---- apply --preflight: the caller's permissions at each resource group
// (Permissions_ListForResourceGroup, served by the fake; by default the role of
// `intentwall permissions azure`)

const RULE_WRITE: &str = "Microsoft.Network/networkSecurityGroups/securityRules/write";

/// The actions of the role `intentwall permissions azure` prints for the estate.
fn role_actions(e: &Estate) -> Vec<Value> {
    let o = common::iw(e.path(), &["permissions", "azure"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let role: Value = serde_json::from_str(&text(&o.stdout)).expect("the role is JSON");
    role["Actions"]
        .as_array()
        .expect("the role's actions")
        .clone()
}

/// `apply --preflight`, requiring that it was refused before any write, with the preflight's
/// exit code (1); its stderr.
fn refused(e: &Estate, fake: &Fake) -> String {
    let o = e.iw(fake, &["apply", "--auto-approve", "--preflight"]);
    assert_eq!(code(&o), 1, "{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(
        fake.mutating(),
        0,
        "a write was made before the preflight refusal"
    );
    text(&o.stderr)
}

#[test]
fn preflight_with_the_full_role_converges_and_the_second_plan_is_empty() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    // the fake's default answer is the role `permissions azure` prints, in one entry
    let actions = role_actions(&e);
    let (s, answer) = fake.http(
        "GET",
        &format!(
            "/subscriptions/{}/resourcegroups/{}/providers/Microsoft.Authorization/permissions\
             ?api-version=2022-04-01",
            TARGETS[0].1, TARGETS[0].2
        ),
        None,
    );
    assert_eq!(s, 200, "{answer}");
    assert_eq!(answer["value"][0]["actions"], Value::Array(actions.clone()));
    // and said explicitly, so this test follows the role whatever the fake's default
    fake.faults(json!({"permissions": [{"actions": actions, "notActions": []}]}));
    let o = e.iw(&fake, &["apply", "--auto-approve", "--preflight"]);
    applied(&o);
    let c = fake.counts();
    assert_eq!(c["permissions"], 3, "one permissions call per target: {c}");
    assert!(c["mutating"].as_u64().unwrap() > 60, "{c}");
    assert_eq!(e.plan_code(&fake), 0, "plan after apply is empty");
    // nothing to write: nothing to check
    let o = e.iw(&fake, &["apply", "--auto-approve", "--preflight"]);
    applied(&o);
    assert_eq!(fake.counts()["permissions"], 3);
}

#[test]
fn preflight_refuses_when_the_role_lacks_an_action_and_writes_nothing() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    let actions: Vec<Value> = role_actions(&e)
        .into_iter()
        .filter(|a| a != RULE_WRITE)
        .collect();
    fake.faults(json!({"permissions": [{"actions": actions.clone()}]}));
    let err = refused(&e, &fake);
    eprintln!("what the refusal says:\n{err}");
    assert!(err.contains("preflight"), "{err}");
    assert!(err.contains(RULE_WRITE), "{err}");
    assert!(err.contains("needed to create rule:iw-"), "{err}");
    for (dep, _, rg, ..) in TARGETS {
        assert!(err.contains(&format!("{dep}/azure")), "{dep}: {err}");
        assert!(err.contains(&format!("resourceGroups/{rg}")), "{rg}: {err}");
    }
    // only that action is named
    assert!(
        !err.contains("securityRules/delete") && !err.contains("applicationSecurityGroups"),
        "{err}"
    );
    assert_eq!(fake.counts()["permissions"], 3);

    // the same action taken away by the role's own notActions (any case, a wildcard)
    fake.faults(json!({"permissions": [{
        "actions": role_actions(&e),
        "notActions": ["microsoft.network/networkSecurityGroups/SECURITYRULES/w*"],
    }]}));
    let err = refused(&e, &fake);
    assert!(err.contains(RULE_WRITE), "{err}");

    // a rule naming an ASG needs to join it: a role without that is refused too
    let no_join: Vec<Value> = role_actions(&e)
        .into_iter()
        .filter(|a| !a.as_str().unwrap_or("").contains("joinNetworkSecurityRule"))
        .collect();
    fake.faults(json!({"permissions": [{"actions": no_join}]}));
    let err = refused(&e, &fake);
    assert!(
        err.contains("Microsoft.Network/applicationSecurityGroups/joinNetworkSecurityRule/action"),
        "{err}"
    );
    assert!(!err.contains(RULE_WRITE), "{err}");
}

#[test]
fn preflight_passes_a_wildcard_role() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    fake.faults(json!({"permissions": [{"actions": ["Microsoft.Network/*"]}]}));
    let o = e.iw(&fake, &["apply", "--auto-approve", "--preflight"]);
    applied(&o);
    assert_eq!(e.plan_code(&fake), 0, "plan after apply is empty");
}

#[test]
fn preflight_reads_every_page_and_not_actions_subtract_only_within_their_role() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    // role 1 takes rule writes away from itself; role 2, on the next page, grants them: the
    // caller may write rules (notActions are not a deny)
    fake.faults(json!({
        "permissions": [
            {"actions": ["*"], "notActions": ["Microsoft.Network/networkSecurityGroups/securityRules/*"]},
            {"actions": ["*/read"]},
            {"actions": ["Microsoft.Network/networkSecurityGroups/securityRules/*"]},
        ],
        "permissions_page": 1,
    }));
    let o = e.iw(&fake, &["apply", "--auto-approve", "--preflight"]);
    applied(&o);
    assert_eq!(
        fake.counts()["permissions"],
        9,
        "three pages for each of three targets"
    );
    assert_eq!(e.plan_code(&fake), 0);
}

#[test]
fn preflight_refuses_when_the_permissions_cannot_be_read() {
    let fake = Fake::start(&[]);
    let e = Estate::new();
    // denied: the call is named, nothing is claimed and nothing written
    fake.faults(json!({"permissions_error": [403, "AuthorizationFailed"]}));
    let err = refused(&e, &fake);
    assert!(err.contains("Permissions_ListForResourceGroup"), "{err}");
    assert!(err.contains("AuthorizationFailed"), "{err}");
    assert!(
        err.contains("could not read the caller's permissions"),
        "{err}"
    );
    // throttled past the bounded retries: refused the same way
    fake.faults(json!({"permissions_error": [429, "TooManyRequests"]}));
    let o = e
        .command(&fake, &["apply", "--auto-approve", "--preflight"])
        .env("INTENTWALL_AZURE_MAX_RETRIES", "1")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains("Permissions_ListForResourceGroup"), "{err}");
    assert!(err.contains("TooManyRequests"), "{err}");
    assert_eq!(fake.mutating(), 0);
    // readable again: the same apply goes through
    fake.faults(json!({"permissions_error": null}));
    let o = e.iw(&fake, &["apply", "--auto-approve", "--preflight"]);
    applied(&o);
}
