//! Reading and writing `aws ec2 describe-security-groups` documents.
//!
//! A document is cut into one `security-group` container per SG, one `sg-rule` per peer of
//! every `IpPermission` (AWS stores one rule per CIDR / SG / prefix list), and one
//! `prefix-list` container per entry of the optional top-level `ManagedPrefixLists`.
//! Rendering puts the atoms back together: rules with equal non-peer fields share one
//! `IpPermission`, as the CLI prints them, and objects read from a document are written from
//! their `raw` JSON unchanged.

use crate::model::*;
use intentwall_contract::native::json_kind;
use intentwall_contract::net::canonical_cidr;
use intentwall_contract::{Body, DeploymentIntent, NativeObject, NativeState, SnapshotError};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const PEER_LISTS: [&str; 4] = [
    "IpRanges",
    "Ipv6Ranges",
    "PrefixListIds",
    "UserIdGroupPairs",
];

fn err(msg: String) -> SnapshotError {
    SnapshotError::msg(msg)
}

fn opt_str<'a>(
    o: &'a Map<String, Value>,
    k: &str,
    what: &str,
) -> Result<Option<&'a str>, SnapshotError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(err(format!("{what}: `{k}` must be a string, found {v}"))),
    }
}

fn opt_int(o: &Map<String, Value>, k: &str, what: &str) -> Result<Option<i64>, SnapshotError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| err(format!("{what}: `{k}` must be an integer, found {n}"))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| err(format!("{what}: `{k}` must be an integer, found \"{s}\""))),
        Some(v) => Err(err(format!("{what}: `{k}` must be an integer, found {v}"))),
    }
}

fn opt_list<'a>(
    o: &'a Map<String, Value>,
    k: &str,
    what: &str,
) -> Result<&'a [Value], SnapshotError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(err(format!(
            "{what}: `{k}` must be a list, found {}",
            json_kind(v)
        ))),
    }
}

fn as_obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, SnapshotError> {
    v.as_object().ok_or_else(|| {
        err(format!(
            "{what}: expected an object, found {}",
            json_kind(v)
        ))
    })
}

/// Tags as a sorted canonical list, plus a lookup.
fn tags(o: &Map<String, Value>, what: &str) -> Result<BTreeMap<String, String>, SnapshotError> {
    let mut out = BTreeMap::new();
    for (i, t) in opt_list(o, "Tags", what)?.iter().enumerate() {
        let w = format!("{what}, Tags[{i}]");
        let t = as_obj(t, &w)?;
        let k = opt_str(t, "Key", &w)?.ok_or_else(|| err(format!("{w}: `Key` is missing")))?;
        let v = opt_str(t, "Value", &w)?.unwrap_or("");
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Canonical JSON of a tag map.
pub fn tags_json(t: &BTreeMap<String, String>) -> Value {
    Value::Array(
        t.iter()
            .map(|(k, v)| serde_json::json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// Does an object carry the `managed-by=intentwall` tag? For a security group of our VPC this
/// is ownership of the whole group, every rule in it included: intentwall writes all of an
/// SG's rules, so one it did not write is drift to undo, not someone else's rule to keep.
fn is_managed(t: &BTreeMap<String, String>) -> bool {
    t.get(TAG_MANAGED_KEY).map(String::as_str) == Some(TAG_MANAGED_VALUE)
}

/// The flow a rule's description names after the `intentwall:` marker, if it has one. It
/// labels plans and audit events; it does not decide ownership.
fn marker_flow(description: Option<&str>) -> Option<String> {
    description?
        .strip_prefix(MARKER)
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
}

fn trimmed(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

struct SgInfo {
    name: String,
    key: String,
    /// In the deployment's VPC (or no VPC is configured).
    ours: bool,
    /// Owned whole: tagged `managed-by=intentwall` and in our VPC. A tagged SG of another
    /// VPC belongs to whatever manages that VPC, so it is not ours to change or delete.
    managed: bool,
}

/// Parse a document; see the module docs. An error after the JSON parsed gets the line and
/// column of the value it names: every message starts with that value's path
/// (`SecurityGroups[1] (name), IpPermissions[0]: `FromPort` ...`), which is followed in the text.
pub fn parse(text: &str, intent: &DeploymentIntent) -> Result<NativeState, SnapshotError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| SnapshotError::json(&e))?;
    parse_doc(&doc, intent).map_err(|e| {
        let path = intentwall_contract::snapshot::path_in_message(&e.message);
        intentwall_contract::snapshot::locate(e, text, &path)
    })
}

fn parse_doc(doc: &Value, intent: &DeploymentIntent) -> Result<NativeState, SnapshotError> {
    let (sgs, pls, envelope): (&[Value], &[Value], Option<String>) = match doc {
        Value::Array(a) => (a, &[], Some("list".into())),
        Value::Object(o) => {
            if !o.contains_key("SecurityGroups") && !o.contains_key("ManagedPrefixLists") {
                return Err(err(
                    "not a describe-security-groups document: expected {\"SecurityGroups\": [...]}"
                        .into(),
                ));
            }
            (
                opt_list(o, "SecurityGroups", "document")?,
                opt_list(o, "ManagedPrefixLists", "document")?,
                None,
            )
        }
        v => {
            return Err(err(format!(
                "not a describe-security-groups document: expected an object, found {}",
                json_kind(v)
            )))
        }
    };
    let vpc = intent.setting("vpc");
    let mut objects: Vec<NativeObject> = Vec::new();
    let mut keys: BTreeSet<String> = BTreeSet::new();

    // prefix lists first (rules resolve their ids), emitted after the groups
    let mut pl_names: BTreeMap<String, String> = BTreeMap::new();
    let mut pl_objects = Vec::new();
    for (i, pl) in pls.iter().enumerate() {
        let what0 = format!("ManagedPrefixLists[{i}]");
        let o = as_obj(pl, &what0)?;
        let id = opt_str(o, "PrefixListId", &what0)?;
        let name = opt_str(o, "PrefixListName", &what0)?;
        let what = format!("{what0} ({})", name.or(id).unwrap_or("?"));
        let label = name.or(id).ok_or_else(|| {
            err(format!(
                "{what}: `PrefixListName` and `PrefixListId` are both missing"
            ))
        })?;
        if let (Some(id), Some(n)) = (id, name) {
            pl_names.insert(id.to_string(), n.to_string());
        }
        let t = tags(o, &what)?;
        let mut entries = Vec::new();
        for (j, e) in opt_list(o, "Entries", &what)?.iter().enumerate() {
            let w = format!("{what}, Entries[{j}]");
            let e = as_obj(e, &w)?;
            let c =
                opt_str(e, "Cidr", &w)?.ok_or_else(|| err(format!("{w}: `Cidr` is missing")))?;
            let c = canonical_cidr(c).ok_or_else(|| err(format!("{w}: `{c}` is not a CIDR")))?;
            let mut m = Map::new();
            m.insert("Cidr".into(), c.into());
            if let Some(d) = trimmed(opt_str(e, "Description", &w)?) {
                m.insert("Description".into(), d.into());
            }
            entries.push(Value::Object(m));
        }
        entries.sort_by_key(|e| e.to_string());
        entries.dedup();
        let mut body = Map::new();
        body.insert("PrefixListName".into(), label.into());
        if let Some(id) = id {
            body.insert("PrefixListId".into(), id.into());
        }
        if let Some(af) = opt_str(o, "AddressFamily", &what)? {
            body.insert("AddressFamily".into(), af.into());
        }
        if let Some(m) = opt_int(o, "MaxEntries", &what)? {
            body.insert("MaxEntries".into(), m.into());
        }
        body.insert("Entries".into(), Value::Array(entries));
        body.insert("Tags".into(), tags_json(&t));
        let managed = is_managed(&t);
        let mut key = format!("pl:{label}");
        if keys.contains(&key) {
            key = format!("{key}#{i}");
        }
        keys.insert(key.clone());
        pl_objects.push(NativeObject {
            kind: KIND_PL.into(),
            key,
            parent: None,
            container: true,
            managed,
            // a prefix list no workload of ours is: kept, never pruned (rules still read it)
            foreign: !managed,
            flow: None,
            body: Value::Object(body).into(),
            raw: Some(Body::new(pl)),
            assigned: None,
            summary: format!("prefix list {label}"),
        });
    }

    // pass 1: groups
    let mut infos: Vec<SgInfo> = Vec::new();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for (i, sg) in sgs.iter().enumerate() {
        let what0 = format!("SecurityGroups[{i}]");
        let o = as_obj(sg, &what0)?;
        let id = opt_str(o, "GroupId", &what0)?;
        let name = opt_str(o, "GroupName", &what0)?;
        let what = format!("{what0} ({})", name.or(id).unwrap_or("?"));
        let name = name.ok_or_else(|| err(format!("{what}: `GroupName` is missing")))?;
        let sg_vpc = opt_str(o, "VpcId", &what)?;
        let t = tags(o, &what)?;
        let ours = match (vpc, sg_vpc) {
            (Some(v), Some(x)) => v == x,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let mut key = if ours {
            format!("sg:{name}")
        } else {
            format!("vpc:{}/sg:{name}", sg_vpc.unwrap_or("none"))
        };
        if keys.contains(&key) {
            key = format!("{key}#{}", id.map(str::to_string).unwrap_or(i.to_string()));
        }
        keys.insert(key.clone());
        if let Some(id) = id {
            by_id.entry(id.to_string()).or_insert(i);
        }
        infos.push(SgInfo {
            name: name.to_string(),
            key,
            ours,
            managed: ours && is_managed(&t),
        });
    }

    // pass 2: containers and rules
    for (i, sg) in sgs.iter().enumerate() {
        let o = sg.as_object().expect("checked in pass 1");
        let info = &infos[i];
        let what = format!("SecurityGroups[{i}] ({})", info.name);
        // SGs we do not own are ones no workload of ours carries (members carry exactly their
        // `iw-<group>` SG): kept, never pruned, not simulated
        let foreign = !info.ours || !info.managed;
        let t = tags(o, &what)?;
        let mut body = Map::new();
        body.insert("GroupName".into(), info.name.clone().into());
        body.insert(
            "Description".into(),
            opt_str(o, "Description", &what)?
                .unwrap_or("")
                .trim()
                .into(),
        );
        if let Some(v) = opt_str(o, "VpcId", &what)? {
            body.insert("VpcId".into(), v.into());
        }
        // the GroupId is the cloud's to assign: it is kept beside the canonical body, never
        // in it, so a group created by apply, whose id the cloud picks, converges
        let assigned = opt_str(o, "GroupId", &what)?
            .map(|id| Body::from(serde_json::json!({ "GroupId": id })));
        body.insert("Tags".into(), tags_json(&t));
        let mut raw = o.clone();
        for d in [Dir::Ingress, Dir::Egress] {
            if raw.contains_key(d.field()) {
                raw.insert(d.field().into(), Value::Array(vec![]));
            }
        }
        objects.push(NativeObject {
            kind: KIND_SG.into(),
            key: info.key.clone(),
            parent: None,
            container: true,
            managed: info.managed,
            foreign,
            flow: None,
            body: Value::Object(body).into(),
            raw: Some(Value::Object(raw).into()),
            assigned,
            summary: format!(
                "security group {}{}",
                info.name,
                if info.managed {
                    ""
                } else {
                    " (not intentwall's)"
                }
            ),
        });
        for dir in [Dir::Ingress, Dir::Egress] {
            for (j, perm) in opt_list(o, dir.field(), &what)?.iter().enumerate() {
                let w = format!("{what}, {}[{j}]", dir.field());
                let p = as_obj(perm, &w)?;
                let proto_text = match p.get("IpProtocol") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    None | Some(Value::Null) => {
                        return Err(err(format!("{w}: `IpProtocol` is missing")))
                    }
                    Some(v) => {
                        return Err(err(format!(
                            "{w}: `IpProtocol` must be a string, found {}",
                            json_kind(v)
                        )))
                    }
                };
                let proto = Proto::parse(&proto_text).map_err(|e| err(format!("{w}: {e}")))?;
                let ports = Ports::from_api(
                    proto,
                    opt_int(p, "FromPort", &w)?,
                    opt_int(p, "ToPort", &w)?,
                )
                .map_err(|e| err(format!("{w}: {e}")))?;
                let perm_c = Perm { proto, ports };
                // each atom's raw is the permission with only its own peer: start from the
                // permission with its peer lists emptied (made once; cloning the whole
                // permission per peer was quadratic in the peers of one permission)
                let mut empty = p.clone();
                for l in PEER_LISTS {
                    if let Some(v) = empty.get_mut(l) {
                        *v = Value::Array(vec![]);
                    }
                }
                for list in PEER_LISTS {
                    for (k, entry) in opt_list(p, list, &w)?.iter().enumerate() {
                        let we = format!("{w}, {list}[{k}]");
                        let e = as_obj(entry, &we)?;
                        let peer = read_peer(list, e, &we, &by_id, &infos, &pl_names)?;
                        let description = trimmed(opt_str(e, "Description", &we)?);
                        let rule = Rule {
                            group_name: info.name.clone(),
                            dir,
                            perm: perm_c,
                            peer,
                            description,
                        };
                        let key = rule.key_under(&info.key);
                        if keys.contains(&key) {
                            // the same atomic rule written twice (`tcp` and `6`, host bits):
                            // AWS holds it once
                            continue;
                        }
                        keys.insert(key.clone());
                        let mut raw = empty.clone();
                        raw.insert(list.into(), Value::Array(vec![entry.clone()]));
                        // the SG is owned whole: its rules are ours whatever they say
                        let managed = info.managed;
                        let flow = if managed {
                            marker_flow(rule.description.as_deref())
                        } else {
                            None
                        };
                        objects.push(NativeObject {
                            kind: KIND_RULE.into(),
                            key,
                            parent: Some(info.key.clone()),
                            container: false,
                            managed,
                            foreign,
                            flow,
                            body: rule.body().into(),
                            raw: Some(Value::Object(raw).into()),
                            assigned: None,
                            summary: rule.summary(),
                        });
                    }
                }
            }
        }
    }
    objects.extend(pl_objects);
    Ok(NativeState { objects, envelope })
}

fn read_peer(
    list: &str,
    e: &Map<String, Value>,
    what: &str,
    by_id: &BTreeMap<String, usize>,
    infos: &[SgInfo],
    pl_names: &BTreeMap<String, String>,
) -> Result<Peer, SnapshotError> {
    let need = |k: &str| -> Result<&str, SnapshotError> {
        opt_str(e, k, what)?.ok_or_else(|| err(format!("{what}: `{k}` is missing")))
    };
    match list {
        "IpRanges" => {
            let c = need("CidrIp")?;
            match canonical_cidr(c) {
                Some(n) if !n.contains(':') => Ok(Peer::CidrIp(n)),
                _ => Err(err(format!("{what}: `{c}` is not an IPv4 CIDR"))),
            }
        }
        "Ipv6Ranges" => {
            let c = need("CidrIpv6")?;
            match canonical_cidr(c) {
                Some(n) if n.contains(':') => Ok(Peer::CidrIpv6(n)),
                _ => Err(err(format!("{what}: `{c}` is not an IPv6 CIDR"))),
            }
        }
        "PrefixListIds" => {
            let id = need("PrefixListId")?;
            Ok(match pl_names.get(id) {
                Some(n) => Peer::PrefixListName(n.clone()),
                None => Peer::PrefixListId(id.to_string()),
            })
        }
        _ => {
            let id = opt_str(e, "GroupId", what)?;
            let name = opt_str(e, "GroupName", what)?;
            let peering = opt_str(e, "VpcPeeringConnectionId", what)?;
            match (id, name) {
                (Some(id), _) => {
                    if let Some(&ix) = by_id.get(id) {
                        if infos[ix].ours && peering.is_none() {
                            return Ok(Peer::GroupName(infos[ix].name.clone()));
                        }
                    }
                    Ok(Peer::GroupId {
                        id: id.to_string(),
                        user_id: opt_str(e, "UserId", what)?.map(str::to_string),
                        vpc_id: opt_str(e, "VpcId", what)?.map(str::to_string),
                        peering: peering.map(str::to_string),
                    })
                }
                (None, Some(n)) => Ok(Peer::GroupName(n.to_string())),
                (None, None) => Err(err(format!(
                    "{what}: `GroupId` is missing from a security group reference"
                ))),
            }
        }
    }
}

/// The `IpPermission` (CLI shape) holding exactly one rule: its peer resolved to an id where
/// `ids` (group name -> id) or `pl_ids` (prefix list name -> id) know it. Snapshots render
/// with it; the live backend sends it.
pub fn permission_from_body(
    rule: &Rule,
    ids: &BTreeMap<String, String>,
    pl_ids: &BTreeMap<String, String>,
) -> Map<String, Value> {
    let mut p = Map::new();
    if let Some((a, _)) = rule.perm.ports.api() {
        p.insert("FromPort".into(), a.into());
    }
    p.insert("IpProtocol".into(), rule.perm.proto.api_text().into());
    for l in PEER_LISTS {
        p.insert(l.into(), Value::Array(vec![]));
    }
    if let Some((_, b)) = rule.perm.ports.api() {
        p.insert("ToPort".into(), b.into());
    }
    let mut e = Map::new();
    let list = match &rule.peer {
        Peer::CidrIp(c) => {
            e.insert("CidrIp".into(), c.clone().into());
            "IpRanges"
        }
        Peer::CidrIpv6(c) => {
            e.insert("CidrIpv6".into(), c.clone().into());
            "Ipv6Ranges"
        }
        Peer::PrefixListName(n) => {
            e.insert(
                "PrefixListId".into(),
                pl_ids.get(n).cloned().unwrap_or_else(|| n.clone()).into(),
            );
            "PrefixListIds"
        }
        Peer::PrefixListId(i) => {
            e.insert("PrefixListId".into(), i.clone().into());
            "PrefixListIds"
        }
        Peer::GroupName(n) => {
            match ids.get(n) {
                Some(id) => e.insert("GroupId".into(), id.clone().into()),
                None => e.insert("GroupName".into(), n.clone().into()),
            };
            "UserIdGroupPairs"
        }
        Peer::GroupId {
            id,
            user_id,
            vpc_id,
            peering,
        } => {
            insert_group_ref(&mut e, id, user_id, vpc_id, peering);
            "UserIdGroupPairs"
        }
    };
    if let Some(d) = &rule.description {
        e.insert("Description".into(), d.clone().into());
    }
    p.insert(list.into(), Value::Array(vec![Value::Object(e)]));
    p
}

/// The document's object for a group from its canonical body: its id is the one the cloud
/// assigned (`assigned`), or, for a group not recorded yet, one given here as the cloud would
/// on create ([`new_group_id`]).
fn sg_from_body(body: &Value, assigned: Option<&Body>) -> Map<String, Value> {
    let b = body.as_object().cloned().unwrap_or_default();
    let mut o = Map::new();
    if let Some(v) = b.get("Description") {
        o.insert("Description".into(), v.clone());
    }
    if let Some(name) = b.get("GroupName").and_then(Value::as_str) {
        let id = assigned
            .and_then(|a| a.value().get("GroupId")?.as_str().map(str::to_string))
            .unwrap_or_else(|| new_group_id(&b, name));
        o.insert("GroupId".into(), id.into());
        o.insert("GroupName".into(), name.into());
    }
    o.insert("IpPermissions".into(), Value::Array(vec![]));
    o.insert("IpPermissionsEgress".into(), Value::Array(vec![]));
    if let Some(t) = b
        .get("Tags")
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    {
        o.insert("Tags".into(), t.clone());
    }
    if let Some(v) = b.get("VpcId") {
        o.insert("VpcId".into(), v.clone());
    }
    o
}

fn pl_from_body(body: &Value) -> Value {
    let b = body.as_object().cloned().unwrap_or_default();
    let mut o = Map::new();
    for k in [
        "AddressFamily",
        "Entries",
        "MaxEntries",
        "PrefixListId",
        "PrefixListName",
        "Tags",
    ] {
        if let Some(v) = b.get(k) {
            o.insert(k.into(), v.clone());
        }
    }
    Value::Object(o)
}

/// The identity of a permission apart from its peers: its other fields as canonical JSON
/// (keys sorted at every level), so equal permissions written in another key order match.
fn head_key(p: &Map<String, Value>) -> String {
    fn canonical(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(&m[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for x in a {
                    canonical(x, out);
                    out.push(',');
                }
                out.push(']');
            }
            v => out.push_str(&v.to_string()),
        }
    }
    let mut out = String::new();
    let mut keys: Vec<&String> = p
        .keys()
        .filter(|k| !PEER_LISTS.contains(&k.as_str()))
        .collect();
    keys.sort();
    for k in keys {
        out.push_str(&Value::String(k.clone()).to_string());
        out.push(':');
        canonical(&p[k], &mut out);
        out.push(',');
    }
    out
}

/// [`head_key`] -> position of the first permission with it, over a list of permissions.
fn index_permissions(list: &[Value]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for (i, p) in list.iter().enumerate() {
        if let Value::Object(p) = p {
            m.entry(head_key(p)).or_insert(i);
        }
    }
    m
}

/// Append the peers of `perm` to those of the permission `p` with the same non-peer fields.
fn merge_peers(p: &mut Map<String, Value>, perm: &Map<String, Value>) {
    for l in PEER_LISTS {
        if let Some(Value::Array(add)) = perm.get(l) {
            if add.is_empty() && p.contains_key(l) {
                continue;
            }
            let tgt = p
                .entry(l.to_string())
                .or_insert_with(|| Value::Array(vec![]));
            if let Value::Array(t) = tgt {
                t.extend(add.iter().cloned());
            }
        }
    }
}

/// Add one permission to a direction's list: its peers join the first permission with the
/// same non-peer fields, else it is appended. `index` is [`index_permissions`] of `list`,
/// kept up to date.
fn join_permission(
    list: &mut Vec<Value>,
    index: &mut HashMap<String, usize>,
    perm: Map<String, Value>,
) {
    let head = head_key(&perm);
    let existing = match index.get(&head) {
        Some(&i) => list.get_mut(i).and_then(Value::as_object_mut),
        None => None,
    };
    match existing {
        Some(p) => {
            merge_peers(p, &perm);
        }
        None => {
            index.insert(head, list.len());
            list.push(Value::Object(perm));
        }
    }
}

/// The id a snapshot gives a group it records for the first time: deterministic in the VPC
/// and the name, so a recorded estate is reproducible (a cloud picks its own; intentwall never
/// compares ids).
fn new_group_id(body: &Map<String, Value>, name: &str) -> String {
    let vpc = body.get("VpcId").and_then(Value::as_str).unwrap_or("");
    synthetic_id("sg", &[vpc, name])
}

/// Write a state as a document (pretty JSON, trailing newline).
pub fn render(state: &NativeState) -> String {
    let mut sgs: Vec<Map<String, Value>> = Vec::new();
    let mut sg_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut pl_ids: BTreeMap<String, String> = BTreeMap::new();
    let mut pls: Vec<Value> = Vec::new();
    let mut perm_index: HashMap<(usize, &str), HashMap<String, usize>> = HashMap::new();
    for o in &state.objects {
        let body = o.body.value();
        if o.kind == KIND_SG {
            let m = match o.raw.as_ref().map(Body::value) {
                Some(Value::Object(r)) => r,
                _ => sg_from_body(&body, o.assigned.as_ref()),
            };
            if o.key.starts_with("sg:") {
                if let (Some(n), Some(id)) = (
                    body.get("GroupName").and_then(Value::as_str),
                    m.get("GroupId").and_then(Value::as_str),
                ) {
                    ids.insert(n.to_string(), id.to_string());
                }
            }
            sg_index.insert(o.key.clone(), sgs.len());
            sgs.push(m);
        } else if o.kind == KIND_PL {
            if let (Some(n), Some(id)) = (
                body.get("PrefixListName").and_then(Value::as_str),
                body.get("PrefixListId").and_then(Value::as_str),
            ) {
                pl_ids.insert(n.to_string(), id.to_string());
            }
            pls.push(
                o.raw
                    .as_ref()
                    .map(Body::value)
                    .unwrap_or_else(|| pl_from_body(&body)),
            );
        }
    }
    for o in state.objects.iter().filter(|o| o.kind == KIND_RULE) {
        let parent = o.parent.clone().unwrap_or_default();
        let group_name = parent.rsplit("sg:").next().unwrap_or("").to_string();
        let Some(rule) = Rule::from_body(&group_name, &o.body.value()) else {
            continue;
        };
        let ix = match sg_index.get(&parent) {
            Some(&ix) => ix,
            None => {
                let mut m = Map::new();
                m.insert("GroupName".into(), group_name.clone().into());
                sg_index.insert(parent.clone(), sgs.len());
                sgs.push(m);
                sgs.len() - 1
            }
        };
        let perm = match o.raw.as_ref().map(Body::value) {
            Some(Value::Object(r)) => r,
            _ => permission_from_body(&rule, &ids, &pl_ids),
        };
        let sg = &mut sgs[ix];
        let field = rule.dir.field();
        let list = sg
            .entry(field.to_string())
            .or_insert_with(|| Value::Array(vec![]));
        if !list.is_array() {
            *list = Value::Array(vec![]);
        }
        let list = list.as_array_mut().expect("made an array");
        // permissions of this SG and direction by their non-peer fields, so an atom finds the
        // permission it joins by lookup, not by rescanning the list (quadratic in atoms)
        let index = perm_index
            .entry((ix, field))
            .or_insert_with(|| index_permissions(list));
        join_permission(list, index, perm);
    }
    let sgs: Vec<Value> = sgs.into_iter().map(Value::Object).collect();
    let doc = if state.envelope.as_deref() == Some("list") && pls.is_empty() {
        Value::Array(sgs)
    } else {
        let mut top = Map::new();
        top.insert("SecurityGroups".into(), Value::Array(sgs));
        if !pls.is_empty() {
            top.insert("ManagedPrefixLists".into(), Value::Array(pls));
        }
        Value::Object(top)
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The grouping as it was: rescan the list for a permission whose non-peer fields are
    /// equal (maps compare regardless of key order).
    fn join_by_scan(list: &mut Vec<Value>, perm: Map<String, Value>) {
        let strip = |m: &Map<String, Value>| {
            let mut m = m.clone();
            for l in PEER_LISTS {
                m.remove(l);
            }
            m
        };
        let head = strip(&perm);
        match list
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .find(|p| strip(p) == head)
        {
            Some(p) => {
                merge_peers(p, &perm);
            }
            None => list.push(Value::Object(perm)),
        }
    }

    /// A permission from a few protocols/ports, its keys in a random order, one peer in a
    /// random list (sometimes with the other lists present and empty).
    fn perm() -> impl Strategy<Value = Map<String, Value>> {
        (
            0u8..3,
            0u16..3,
            0usize..4,
            0u8..200,
            any::<u64>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(proto, port, list, peer, order, empties, nested)| {
                let mut fields: Vec<(String, Value)> = vec![
                    (
                        "IpProtocol".into(),
                        ["tcp", "udp", "-1"][proto as usize].into(),
                    ),
                    ("FromPort".into(), port.into()),
                    ("ToPort".into(), (port + 1).into()),
                ];
                if nested {
                    fields.push(("Extra".into(), serde_json::json!({"b": 1, "a": [port]})));
                }
                for (i, l) in PEER_LISTS.iter().enumerate() {
                    if i == list {
                        fields.push((
                            (*l).into(),
                            serde_json::json!([{ "CidrIp": format!("10.0.0.{peer}/32") }]),
                        ));
                    } else if empties {
                        fields.push(((*l).into(), serde_json::json!([])));
                    }
                }
                // deterministic shuffle from `order`
                let mut s = order | 1;
                for i in (1..fields.len()).rev() {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    fields.swap(i, (s % (i as u64 + 1)) as usize);
                }
                fields.into_iter().collect()
            })
    }

    proptest! {
        /// Joining by index gives exactly the list (and key order) the rescan gave.
        #[test]
        fn join_by_index_equals_join_by_scan(perms in proptest::collection::vec(perm(), 0..40)) {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            let mut index = index_permissions(&fast);
            for p in perms {
                join_permission(&mut fast, &mut index, p.clone());
                join_by_scan(&mut slow, p);
            }
            prop_assert_eq!(
                serde_json::to_string(&fast).unwrap(),
                serde_json::to_string(&slow).unwrap()
            );
        }
    }
}
