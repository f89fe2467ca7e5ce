//! `apply --preflight` on Azure: before any write, ask ARM which actions the caller may
//! perform at each target's resource group, and refuse the apply (nothing written) when one
//! that the target's changes need is not granted.
//!
//! Azure has no policy simulator like IAM's `SimulatePrincipalPolicy`. What it does answer is
//! `Permissions_ListForResourceGroup` (`GET /subscriptions/{s}/resourceGroups/{rg}/providers/
//! Microsoft.Authorization/permissions`, API 2022-04-01): the `actions` / `notActions` of every
//! role assigned to the caller at that scope or above it, one entry per role. This module
//!
//! 1. computes the ARM actions the target's writes make ([`needed`]: the same calls as
//!    [`super::write`], action by action, each with the changes that need it);
//! 2. reads the caller's permissions at the target's resource group (every page);
//! 3. evaluates each action as ARM does ([`granted`]): allowed when one entry has an
//!    `actions` pattern matching it and that **same** entry's `notActions` does not match it.
//!    `notActions` only subtract from their own role: another role granting the action still
//!    grants it, so entries are never merged.
//!
//! What the answer cannot show, and so preflight cannot see: deny assignments (they are not in
//! this API's answer, and override any grant), Azure Policy (a `deny` effect refuses a request
//! whatever the roles say), resource locks (a `ReadOnly` lock refuses writes, a `CanNotDelete`
//! lock deletions), conditions on role assignments, and the grant on an ASG of another resource
//! group that a rule names (joining it is checked on that ASG; here only at the target's
//! resource group). A pass means "the roles grant every action", not "ARM will accept every
//! write"; the writes still stop at the first refusal.
//!
//! The call itself is `Microsoft.Authorization/permissions/read` at the resource group (in the
//! role of `intentwall permissions azure`). Any failure of it (denied, resource group missing,
//! throttling past the pipeline's bounded retries, an answer that does not parse) refuses
//! the preflight with the call named: a check that was not made never passes.

use super::{error, setting, Conn, Placement, CALL_TIMEOUT};
use crate::model::AzRule;
use crate::{KIND_NSG, KIND_RULE};
use azure_mgmt_authorization::models::Permission;
use futures::StreamExt;
use intentwall_contract::live::{some_of, ErrorKind, Op, ProviderError};
use intentwall_contract::NativeObject;
use std::collections::BTreeMap;

/// The operation id of the permissions call, as errors name it.
pub const CALL: &str = "Permissions_ListForResourceGroup";

/// Read the NSGs of the resource group (the re-read right before the first write, and polling
/// a written NSG).
pub const NSG_READ: &str = "Microsoft.Network/networkSecurityGroups/read";
/// Create the deployment's NSG.
pub const NSG_WRITE: &str = "Microsoft.Network/networkSecurityGroups/write";
/// Read a rule back after a long-running write (its new etag), or poll it.
pub const RULE_READ: &str = "Microsoft.Network/networkSecurityGroups/securityRules/read";
/// Create, change or move a rule.
pub const RULE_WRITE: &str = "Microsoft.Network/networkSecurityGroups/securityRules/write";
/// Remove a rule.
pub const RULE_DELETE: &str = "Microsoft.Network/networkSecurityGroups/securityRules/delete";
/// Whether an `iw-<group>` ASG a rule names exists.
pub const ASG_READ: &str = "Microsoft.Network/applicationSecurityGroups/read";
/// Create an `iw-<group>` ASG a rule names when it is missing.
pub const ASG_WRITE: &str = "Microsoft.Network/applicationSecurityGroups/write";
/// Name an ASG as a rule's source or destination (checked on the ASG when the rule is written).
pub const ASG_JOIN: &str =
    "Microsoft.Network/applicationSecurityGroups/joinNetworkSecurityRule/action";

/// Every action [`needed`] can ask for (the test `every_action_preflight_asks_for_is_in_the_role`
/// keeps them in the role of `intentwall permissions azure`).
pub const ALL: &[&str] = &[
    NSG_READ,
    NSG_WRITE,
    RULE_READ,
    RULE_WRITE,
    RULE_DELETE,
    ASG_READ,
    ASG_WRITE,
    ASG_JOIN,
];

/// Whether ARM's action pattern `pattern` matches `action`: case-insensitive, `*` standing for
/// any run of characters (`/` included: `*/read` matches every read, `Microsoft.Network/*`
/// everything of the provider), any other character for itself.
pub fn matches(pattern: &str, action: &str) -> bool {
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let a: Vec<char> = action.chars().flat_map(char::to_lowercase).collect();
    // the classic greedy glob walk: on a mismatch, let the last `*` swallow one more character
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < a.len() {
        if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == a[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Whether the permission entries grant `action`: some entry's `actions` match it and the same
/// entry's `notActions` do not (a role's `notActions` never take away another role's grant).
pub fn granted(entries: &[Permission], action: &str) -> bool {
    entries.iter().any(|e| {
        e.actions.iter().any(|p| matches(p, action))
            && !e.not_actions.iter().any(|p| matches(p, action))
    })
}

/// The ARM actions the writes of `ops` make at the resource group `rg` of subscription `sub`,
/// each with the changes that need it (in the order of `ops`). Mirrors [`super::write`]:
///
/// - any write: the NSG listing read again right before it;
/// - an NSG to create: its PUT (and its read, polling it); NSGs are never updated or deleted
///   live, so those changes need no action (the write step refuses a deletion);
/// - a rule to create, change or replace: its PUT and its read (the etag after a long-running
///   write); when it names ASGs, joining each, and for our `iw-` ASGs of the resource group
///   reading them and creating the missing ones;
/// - a rule to delete: its DELETE and its read (polling it when the operation's status is out
///   of reach).
pub fn needed(sub: &str, rg: &str, ops: &[Op<'_>]) -> BTreeMap<&'static str, Vec<String>> {
    let mut need: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut add = |action: &'static str, change: &str| {
        let v = need.entry(action).or_default();
        if !v.iter().any(|c| c == change) {
            v.push(change.to_string());
        }
    };
    // the lowercased id prefix of the ASGs the writer creates when missing
    let ours = format!(
        "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.network/applicationsecuritygroups/iw-"
    )
    .to_ascii_lowercase();
    for op in ops {
        let (verb, o) = match op {
            Op::Create(o) => ("create", *o),
            Op::Update { after, .. } => ("update", *after),
            Op::Replace { after, .. } => ("replace", *after),
            Op::Delete(o) => ("delete", *o),
        };
        let change = format!("{verb} {}", o.key);
        match (op, o.kind.as_str()) {
            (Op::Create(_), KIND_NSG) => {
                add(NSG_READ, &change);
                add(NSG_WRITE, &change);
            }
            (Op::Delete(_), KIND_RULE) => {
                add(NSG_READ, &change);
                add(RULE_DELETE, &change);
                add(RULE_READ, &change);
            }
            (_, KIND_RULE) => {
                add(NSG_READ, &change);
                add(RULE_WRITE, &change);
                add(RULE_READ, &change);
                match asgs(o) {
                    Some(ids) => {
                        for id in &ids {
                            add(ASG_JOIN, &change);
                            if id.starts_with(&ours) {
                                add(ASG_READ, &change);
                                add(ASG_WRITE, &change);
                            }
                        }
                    }
                    // not readable as a rule (the write step refuses it): assume the most it
                    // could need, so the preflight never passes for less than the write asks
                    None => {
                        add(ASG_JOIN, &change);
                        add(ASG_READ, &change);
                        add(ASG_WRITE, &change);
                    }
                }
            }
            _ => {}
        }
    }
    need
}

/// The ASG ids (lowercased) a rule object names on either side; `None` when it does not read
/// as a rule.
fn asgs(o: &NativeObject) -> Option<Vec<String>> {
    let nsg = o
        .parent
        .as_deref()
        .and_then(|p| p.strip_prefix("nsg:"))
        .unwrap_or("");
    let r = AzRule::from_json(&o.body.value(), nsg).ok()?;
    Some(r.src.asgs.into_iter().chain(r.dst.asgs).collect())
}

/// How many changes a message lists before ", and N more".
const SHOWN: usize = 3;

/// One line per needed action the entries do not grant: the action, the scope it was asked
/// at, and the changes that need it.
pub fn evaluate(
    scope: &str,
    need: &BTreeMap<&'static str, Vec<String>>,
    entries: &[Permission],
) -> Vec<String> {
    need.iter()
        .filter(|(action, _)| !granted(entries, action))
        .map(|(action, changes)| {
            format!(
                "{action} is not granted at {scope}; needed to {}",
                some_of(changes, SHOWN)
            )
        })
        .collect()
}

/// The caller's permission entries at the resource group: every page, within the call timeout.
pub async fn permissions(
    conn: &Conn,
    target: &str,
    sub: &str,
    rg: &str,
) -> Result<Vec<Permission>, ProviderError> {
    let read = async {
        let mut pages = conn
            .authorization
            .permissions_client()
            .list_for_resource_group(rg, sub)
            .into_stream();
        let mut entries = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::classify(target, CALL, &e))?;
            entries.extend(page.value);
        }
        Ok::<_, ProviderError>(entries)
    };
    tokio::time::timeout(CALL_TIMEOUT, read)
        .await
        .map_err(|_| ProviderError::new(ErrorKind::Unavailable, target, CALL, "timed out"))?
}

/// The actions the target's writes need that the caller's roles at its resource group do not
/// grant (empty: all granted). An error when the permissions could not be read: the preflight
/// then refuses, it never passes unchecked.
pub async fn denied(
    conn: &Conn,
    target: &str,
    p: &Placement,
    ops: &[Op<'_>],
) -> Result<Vec<String>, ProviderError> {
    let sub = setting(target, p, "subscription")?;
    let rg = setting(target, p, "resource_group")?;
    let need = needed(sub, rg, ops);
    if need.is_empty() {
        return Ok(Vec::new());
    }
    let entries = permissions(conn, target, sub, rg).await.map_err(|mut e| {
        e.message.push_str(
            " (apply --preflight could not read the caller's permissions, so it refuses: \
             nothing was written)",
        );
        e
    })?;
    let scope = format!("/subscriptions/{sub}/resourceGroups/{rg}");
    let out = evaluate(&scope, &need, &entries);
    tracing::info!(
        target: "intentwall::azure",
        target,
        entries = entries.len(),
        needed = need.len(),
        denied = out.len(),
        "preflight: the caller's permissions at the resource group"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::role;
    use intentwall_contract::Body;
    use proptest::prelude::*;
    use serde_json::json;

    fn entry(actions: &[&str], not_actions: &[&str]) -> Permission {
        Permission {
            actions: actions.iter().map(|s| s.to_string()).collect(),
            not_actions: not_actions.iter().map(|s| s.to_string()).collect(),
            ..Permission::default()
        }
    }

    #[test]
    fn wildcards_match_as_arm_documents_them() {
        assert!(matches("*", RULE_WRITE));
        assert!(matches("Microsoft.Network/*", RULE_WRITE));
        assert!(matches("*/read", NSG_READ));
        assert!(matches("*/read", RULE_READ));
        assert!(!matches("*/read", RULE_WRITE));
        assert!(matches(
            "Microsoft.Network/networkSecurityGroups/*",
            RULE_DELETE
        ));
        assert!(matches("Microsoft.Network/*/write", ASG_WRITE));
        assert!(matches(
            "Microsoft.Net*/applicationSecurityGroups/*",
            ASG_JOIN
        ));
        assert!(!matches("Microsoft.Network/virtualNetworks/*", NSG_READ));
        assert!(!matches("Microsoft.Compute/*", NSG_READ));
        // no wildcard: the whole action, nothing more or less
        assert!(!matches(NSG_READ, RULE_READ));
        assert!(!matches(
            "Microsoft.Network/networkSecurityGroups",
            NSG_READ
        ));
        assert!(!matches("", NSG_READ));
        assert!(matches("**", NSG_READ));
    }

    #[test]
    fn matching_ignores_case() {
        assert!(matches(
            "microsoft.network/NETWORKSECURITYGROUPS/securityrules/WRITE",
            RULE_WRITE
        ));
        assert!(matches("MICROSOFT.NETWORK/*", ASG_JOIN));
        assert!(granted(&[entry(&["microsoft.network/*"], &[])], RULE_WRITE));
    }

    #[test]
    fn not_actions_subtract_within_their_entry_only() {
        let network = entry(&["Microsoft.Network/*"], &["*/delete"]);
        assert!(granted(std::slice::from_ref(&network), RULE_WRITE));
        assert!(!granted(std::slice::from_ref(&network), RULE_DELETE));
        // another role granting the delete grants it: notActions are not a deny
        let deleter = entry(&[RULE_DELETE], &[]);
        assert!(granted(&[network.clone(), deleter.clone()], RULE_DELETE));
        assert!(granted(&[deleter, network], RULE_DELETE));
        // a notActions alone grants nothing, and removes nothing from another entry
        let only_not = entry(&[], &[RULE_WRITE]);
        let writer = entry(&[RULE_WRITE], &[]);
        assert!(!granted(std::slice::from_ref(&only_not), RULE_WRITE));
        assert!(granted(&[only_not, writer], RULE_WRITE));
        // nothing granted at all
        assert!(!granted(&[], NSG_READ));
        // a notActions with a different case still subtracts
        let e = entry(
            &["*"],
            &["MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/*"],
        );
        assert!(!granted(&[e], RULE_WRITE));
    }

    fn arb_action() -> impl Strategy<Value = String> {
        prop::collection::vec("[A-Za-z./]{1,12}", 1..5).prop_map(|p| p.join("/"))
    }

    proptest! {
        #[test]
        fn an_action_matches_itself_in_any_case(a in arb_action()) {
            prop_assert!(matches(&a, &a));
            prop_assert!(matches(&a.to_uppercase(), &a));
            prop_assert!(matches(&a.to_lowercase(), &a.to_uppercase()));
        }

        #[test]
        fn any_part_replaced_by_a_wildcard_still_matches(
            a in arb_action(), x in 0usize..40, y in 0usize..40,
        ) {
            let chars: Vec<char> = a.chars().collect();
            let (lo, hi) = (x.min(y).min(chars.len()), x.max(y).min(chars.len()));
            let pattern: String = chars[..lo].iter().chain(['*'].iter()).chain(chars[hi..].iter()).collect();
            prop_assert!(matches(&pattern, &a), "{} {}", pattern, a);
        }

        #[test]
        fn without_a_wildcard_only_the_same_action_matches(a in arb_action(), b in arb_action()) {
            prop_assert_eq!(matches(&a, &b), a.eq_ignore_ascii_case(&b));
        }

        #[test]
        fn a_literal_tail_must_be_there(a in arb_action(), tail in "[a-z]{1,6}") {
            // `*tail` matches exactly the actions ending in tail (any case)
            prop_assert_eq!(
                matches(&format!("*{tail}"), &a),
                a.to_ascii_lowercase().ends_with(&tail)
            );
        }

        #[test]
        fn granted_is_some_entry_granting_without_its_own_not_actions(
            entries in prop::collection::vec(
                (prop::collection::vec(prop::sample::select(vec!["*", "Microsoft.Network/*", "*/read", RULE_WRITE, RULE_DELETE, NSG_READ]), 0..3),
                 prop::collection::vec(prop::sample::select(vec!["*/delete", "*/write", RULE_WRITE, "Microsoft.Network/*"]), 0..2)),
                0..4),
            action in prop::sample::select(ALL.to_vec()),
        ) {
            let es: Vec<Permission> = entries.iter().map(|(a, n)| entry(a, n)).collect();
            let by_one = es.iter().any(|e| granted(std::slice::from_ref(e), action));
            prop_assert_eq!(granted(&es, action), by_one);
            // adding an entry never takes a grant away
            if granted(&es, action) {
                let mut more = es.clone();
                more.push(entry(&[], &["*"]));
                prop_assert!(granted(&more, action));
            }
        }
    }

    const SUB: &str = "s1";
    const RG: &str = "rg-a";

    fn rule(name: &str, src_asg: Option<&str>) -> NativeObject {
        let mut props = json!({"protocol": "Tcp", "access": "Allow", "priority": 200,
            "direction": "Inbound", "sourcePortRange": "*", "destinationAddressPrefix": "*",
            "destinationPortRange": "443"});
        match src_asg {
            Some(id) => props["sourceApplicationSecurityGroups"] = json!([{ "id": id }]),
            None => props["sourceAddressPrefix"] = json!("10.0.0.0/24"),
        }
        object(
            KIND_RULE,
            &format!("rule:{name}"),
            json!({"name": name, "properties": props}),
        )
    }

    fn object(kind: &str, key: &str, body: serde_json::Value) -> NativeObject {
        NativeObject {
            kind: kind.into(),
            key: key.into(),
            parent: (kind == KIND_RULE).then(|| "nsg:nsg-a".to_string()),
            container: kind == KIND_NSG,
            managed: true,
            foreign: false,
            flow: None,
            body: Body::new(&body),
            raw: None,
            assigned: None,
            summary: String::new(),
        }
    }

    fn ours(group: &str) -> String {
        format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/applicationSecurityGroups/iw-{group}")
    }

    #[test]
    fn each_change_needs_the_calls_the_writer_makes() {
        let nsg = object(KIND_NSG, "nsg:nsg-a", json!({"name": "nsg-a"}));
        let plain = rule("iw-plain", None);
        let with_ours = rule("iw-web", Some(&ours("web")));
        let foreign = rule(
            "iw-foreign",
            Some("/subscriptions/s1/resourceGroups/other/providers/Microsoft.Network/applicationSecurityGroups/app"),
        );
        let gone = rule("iw-gone", None);

        let need = needed(SUB, RG, &[Op::Create(&nsg)]);
        assert_eq!(
            need.keys().copied().collect::<Vec<_>>(),
            [NSG_READ, NSG_WRITE]
        );
        assert_eq!(need[NSG_WRITE], ["create nsg:nsg-a"]);

        let need = needed(SUB, RG, &[Op::Create(&plain)]);
        assert_eq!(
            need.keys().copied().collect::<Vec<_>>(),
            [NSG_READ, RULE_READ, RULE_WRITE]
        );

        // our ASG may be created; a foreign one is only joined
        let need = needed(
            SUB,
            RG,
            &[Op::Update {
                before: &plain,
                after: &with_ours,
            }],
        );
        assert!(
            need.contains_key(ASG_JOIN)
                && need.contains_key(ASG_WRITE)
                && need.contains_key(ASG_READ)
        );
        assert_eq!(need[ASG_WRITE], ["update rule:iw-web"]);
        let need = needed(
            SUB,
            RG,
            &[Op::Replace {
                before: &plain,
                after: &foreign,
            }],
        );
        assert!(need.contains_key(ASG_JOIN));
        assert!(!need.contains_key(ASG_WRITE) && !need.contains_key(ASG_READ));

        let need = needed(SUB, RG, &[Op::Delete(&gone)]);
        assert_eq!(
            need.keys().copied().collect::<Vec<_>>(),
            [NSG_READ, RULE_DELETE, RULE_READ]
        );
        assert!(!need.contains_key(RULE_WRITE));

        // NSG updates and deletions make no call (the writer never deletes an NSG)
        assert!(needed(SUB, RG, &[Op::Delete(&nsg)]).is_empty());
        assert!(needed(SUB, RG, &[]).is_empty());

        // an object that does not read as a rule is assumed to need the most
        let odd = object(KIND_RULE, "rule:odd", json!({"name": "odd"}));
        let need = needed(SUB, RG, &[Op::Create(&odd)]);
        assert!(need.contains_key(ASG_JOIN) && need.contains_key(ASG_WRITE));
    }

    #[test]
    fn messages_name_action_scope_and_changes() {
        let rules: Vec<NativeObject> = (0..5).map(|i| rule(&format!("iw-r{i}"), None)).collect();
        let ops: Vec<Op<'_>> = rules.iter().map(Op::Create).collect();
        let need = needed(SUB, RG, &ops);
        let role = entry(&["*/read"], &[]);
        let out = evaluate("/subscriptions/s1/resourceGroups/rg-a", &need, &[role]);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(
            out[0],
            format!(
                "{RULE_WRITE} is not granted at /subscriptions/s1/resourceGroups/rg-a; needed to \
                 create rule:iw-r0, create rule:iw-r1, create rule:iw-r2, and 2 more"
            )
        );
        assert!(evaluate("x", &need, &[entry(&["*"], &[])]).is_empty());
    }

    /// The actions of the role `intentwall permissions azure` prints.
    fn role_actions() -> Vec<String> {
        let v = role(&[vec![SUB.to_string(), RG.to_string()]]);
        v["Actions"]
            .as_array()
            .expect("the role lists actions")
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn every_action_preflight_asks_for_is_in_the_role() {
        let actions = role_actions();
        for a in ALL {
            assert!(actions.iter().any(|r| r == a), "{a} is not in the role");
        }
        // and the role, as the permissions API would return it, grants them all
        let entries = [entry(
            &actions.iter().map(String::as_str).collect::<Vec<_>>(),
            &[],
        )];
        for a in ALL {
            assert!(granted(&entries, a), "{a}");
        }
        // the preflight's own call is in the role too
        assert!(actions
            .iter()
            .any(|a| a == "Microsoft.Authorization/permissions/read"));
    }

    fn arb_rule() -> impl Strategy<Value = NativeObject> {
        (
            "[a-z]{1,6}",
            prop::option::of(prop::sample::select(vec![
                ours("web"),
                ours("db"),
                "/subscriptions/x/resourceGroups/y/providers/Microsoft.Network/applicationSecurityGroups/z".to_string(),
            ])),
            any::<bool>(),
        )
            .prop_map(|(n, asg, valid)| {
                if valid {
                    rule(&format!("iw-{n}"), asg.as_deref())
                } else {
                    object(KIND_RULE, &format!("rule:{n}"), json!(n))
                }
            })
    }

    proptest! {
        #[test]
        fn needed_asks_only_for_actions_listed_in_all(
            objs in prop::collection::vec(arb_rule(), 1..6),
            verbs in prop::collection::vec(0u8..5, 6),
        ) {
            let nsg = object(KIND_NSG, "nsg:nsg-a", json!({"name": "nsg-a"}));
            let ops: Vec<Op<'_>> = objs.iter().zip(&verbs).map(|(o, v)| match v {
                0 => Op::Create(o),
                1 => Op::Update { before: o, after: o },
                2 => Op::Replace { before: o, after: o },
                3 => Op::Delete(o),
                _ => Op::Create(&nsg),
            }).collect();
            let need = needed(SUB, RG, &ops);
            for (a, changes) in &need {
                prop_assert!(ALL.contains(a), "{}", a);
                prop_assert!(!changes.is_empty());
            }
            // any write re-reads the NSGs first
            prop_assert!(need.contains_key(NSG_READ));
            // the role grants everything needed
            let actions = role_actions();
            let full = [entry(&actions.iter().map(String::as_str).collect::<Vec<_>>(), &[])];
            prop_assert!(evaluate("s", &need, &full).is_empty());
        }
    }
}
