//! The canonical form of one GCP VPC firewall rule.
//!
//! A [`Firewall`] is read from the JSON the Compute API (and `gcloud compute firewall-rules
//! list --format=json`) returns, with every API default filled in and every field that has
//! several spellings normalised, so two rules that mean the same thing have the same
//! canonical JSON ([`Firewall::to_json`]). Cloud-assigned fields (`id`, `creationTimestamp`,
//! `selfLink`, `kind`) are not part of it.

use intentwall_contract::native::json_kind;
use intentwall_contract::net::{parse_cidr_lenient, PortSet};
use intentwall_contract::traffic::proto;
use intentwall_contract::AddrSet;
use ipnet::IpNet;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The API's default priority.
pub const DEFAULT_PRIORITY: u32 = 1000;
/// Highest priority number the API accepts (the implied rules sit there).
pub const MAX_PRIORITY: u32 = 65535;
/// Host of the canonical network URLs.
pub const API_PREFIX: &str = "https://www.googleapis.com/compute/v1/";

/// INGRESS or EGRESS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    /// `INGRESS` (the API default).
    Ingress,
    /// `EGRESS`.
    Egress,
}

impl Dir {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Ingress => "INGRESS",
            Dir::Egress => "EGRESS",
        }
    }
}

/// `allowed[]` or `denied[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Act {
    /// `allowed`.
    Allow,
    /// `denied`.
    Deny,
}

/// One `{IPProtocol, ports?}` entry: a canonical protocol text and its ports (`None` = all
/// ports, also for protocols without ports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `all`, a name (`tcp`, `udp`, `icmp`, `esp`, `ah`, `sctp`, `ipip`) or a number.
    pub protocol: String,
    /// Selected destination ports (tcp, udp, sctp only); `None` = every port.
    pub ports: Option<PortSet>,
}

/// A network reference: the project (when the URL names one) and the network's short name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRef {
    /// Project id, if the URL names one.
    pub project: Option<String>,
    /// Network name.
    pub name: String,
}

impl NetworkRef {
    /// Parse a full URL (`https://www.googleapis.com/compute/v1/projects/p/global/networks/n`,
    /// any API version), a partial URL (`projects/p/global/networks/n`, `global/networks/n`)
    /// or a bare name.
    pub fn parse(text: &str) -> Result<NetworkRef, String> {
        let t = text.trim();
        let rest = match t.find("://") {
            Some(i) => {
                // scheme://host/compute/<version>/projects/...
                let after = &t[i + 3..];
                let path = after.split_once('/').map(|(_, p)| p).unwrap_or("");
                let path = path.strip_prefix("compute/").unwrap_or(path);
                match path.split_once('/') {
                    Some((_version, p)) => p.to_string(),
                    None => path.to_string(),
                }
            }
            None => t.trim_start_matches('/').to_string(),
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let bad =
            || format!("`{text}` is not a network URL (expected projects/P/global/networks/N)");
        match parts.as_slice() {
            ["projects", p, "global", "networks", n] if !p.is_empty() && !n.is_empty() => {
                Ok(NetworkRef {
                    project: Some((*p).to_string()),
                    name: (*n).to_string(),
                })
            }
            ["global", "networks", n] if !n.is_empty() => Ok(NetworkRef {
                project: None,
                name: (*n).to_string(),
            }),
            [n] if !n.is_empty() && !n.contains(':') => Ok(NetworkRef {
                project: None,
                name: (*n).to_string(),
            }),
            _ => Err(bad()),
        }
    }

    /// The canonical text: a full v1 URL when the project is known, else `global/networks/N`.
    pub fn canonical(&self, default_project: Option<&str>) -> String {
        match self.project.as_deref().or(default_project) {
            Some(p) => format!("{API_PREFIX}projects/{p}/global/networks/{}", self.name),
            None => format!("global/networks/{}", self.name),
        }
    }
}

/// One firewall rule in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    /// Rule name (project-wide identity).
    pub name: String,
    /// Canonical network URL.
    pub network: String,
    /// INGRESS / EGRESS.
    pub direction: Dir,
    /// 0-65535.
    pub priority: u32,
    /// Canonical CIDRs, sorted, deduplicated.
    pub source_ranges: Vec<String>,
    /// Canonical CIDRs, sorted, deduplicated.
    pub destination_ranges: Vec<String>,
    /// Sorted, deduplicated.
    pub source_tags: Vec<String>,
    /// Sorted, deduplicated.
    pub target_tags: Vec<String>,
    /// Sorted, deduplicated.
    pub source_service_accounts: Vec<String>,
    /// Sorted, deduplicated.
    pub target_service_accounts: Vec<String>,
    /// Allow or deny.
    pub action: Act,
    /// Protocol entries, merged per protocol and sorted.
    pub entries: Vec<Entry>,
    /// Not enforced when true.
    pub disabled: bool,
    /// Trimmed; empty = none.
    pub description: String,
    /// `None` = logging off; `Some(metadata)` = on.
    pub log: Option<String>,
}

/// Canonical protocol text for a name or number, or an error.
pub fn canonical_protocol(text: &str) -> Result<String, String> {
    let t = text.trim().to_ascii_lowercase();
    let named = match t.as_str() {
        "all" => return Ok("all".into()),
        "tcp" => Some(6u8),
        "udp" => Some(17),
        "icmp" => Some(1),
        "esp" => Some(50),
        "ah" => Some(51),
        "sctp" => Some(132),
        "ipip" => Some(4),
        "gre" => Some(47),
        "icmpv6" | "ipv6-icmp" => Some(58),
        _ => None,
    };
    let n = match named {
        Some(n) => n,
        None => t.parse::<u8>().map_err(|_| {
            format!("unknown IPProtocol `{text}` (expected all, tcp, udp, icmp, esp, ah, sctp, ipip or a number 0-255)")
        })?,
    };
    Ok(protocol_text(n))
}

/// The text GCP uses for a protocol number: its name where GCP has one, else the number.
pub fn protocol_text(n: u8) -> String {
    match n {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        132 => "sctp".into(),
        4 => "ipip".into(),
        n => n.to_string(),
    }
}

/// The protocol number of a canonical protocol text (`None` for `all`).
pub fn protocol_number(text: &str) -> Option<u8> {
    match text {
        "all" => None,
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "esp" => Some(50),
        "ah" => Some(51),
        "sctp" => Some(132),
        "ipip" => Some(4),
        n => n.parse().ok(),
    }
}

/// Merge protocol entries: one entry per protocol, ports united, full port sets dropped,
/// `all` swallowing everything; sorted by protocol number.
pub fn merge_entries(entries: Vec<Entry>) -> Vec<Entry> {
    // per protocol: its port sets (united once at the end), or `None` once an entry has no
    // ports (every port)
    let mut by: BTreeMap<Option<u8>, Option<Vec<PortSet>>> = BTreeMap::new();
    for e in entries {
        let n = protocol_number(&e.protocol);
        let slot = by.entry(n).or_insert_with(|| Some(Vec::new()));
        match (slot.as_mut(), e.ports) {
            (Some(sets), Some(p)) => sets.push(p),
            _ => *slot = None,
        }
    }
    let by: BTreeMap<Option<u8>, Option<PortSet>> = by
        .into_iter()
        .map(|(n, sets)| (n, sets.map(|s| PortSet::union_all(&s))))
        .collect();
    if by.contains_key(&None) {
        return vec![Entry {
            protocol: "all".into(),
            ports: None,
        }];
    }
    by.into_iter()
        .map(|(n, ports)| {
            let n = n.expect("all handled above");
            Entry {
                protocol: protocol_text(n),
                ports: ports.filter(|p| proto::has_ports(n) && !p.is_full()),
            }
        })
        .collect()
}

/// Canonical CIDR list: host bits cleared, IPv6 compressed, sorted (IPv4 first), deduplicated.
pub fn canonical_ranges(nets: &[IpNet]) -> Vec<String> {
    let mut v: Vec<IpNet> = nets.iter().map(|n| n.trunc()).collect();
    v.sort();
    v.dedup();
    v.iter().map(|n| n.to_string()).collect()
}

/// The address set of canonical (or any valid) CIDR texts.
pub fn ranges_set(ranges: &[String]) -> AddrSet {
    let nets: Vec<IpNet> = ranges
        .iter()
        .filter_map(|r| parse_cidr_lenient(r).ok())
        .map(|n| n.trunc())
        .collect();
    AddrSet::from_nets(&nets)
}

fn sorted_strings(v: &[String]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.trim().to_string()).collect();
    v.sort();
    v.dedup();
    v
}

/// Reads fields with errors that name the rule.
struct Reader<'a> {
    obj: &'a Map<String, Value>,
    who: String,
}

impl Reader<'_> {
    fn err(&self, msg: impl std::fmt::Display) -> String {
        format!("{}: {msg}", self.who)
    }
    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.err(format!(
                "field `{key}` must be a string, found {}",
                json_kind(other)
            ))),
        }
    }
    fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.err(format!(
                        "field `{key}` must hold strings, found {}",
                        json_kind(other)
                    ))),
                })
                .collect(),
            Some(other) => Err(self.err(format!(
                "field `{key}` must be a list of strings, found {}",
                json_kind(other)
            ))),
        }
    }
    fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.err(format!(
                "field `{key}` must be true or false, found {}",
                json_kind(other)
            ))),
        }
    }
    fn ranges(&self, key: &str) -> Result<Vec<String>, String> {
        let texts = self.strings(key)?;
        let mut nets = Vec::with_capacity(texts.len());
        for t in &texts {
            nets.push(
                parse_cidr_lenient(t)
                    .map_err(|_| self.err(format!("`{t}` in `{key}` is not a CIDR range")))?,
            );
        }
        Ok(canonical_ranges(&nets))
    }
}

impl Firewall {
    /// Read one rule from API JSON. `who` names it in errors (`firewall #3 `x``);
    /// `default_project` completes partial network URLs.
    pub fn from_json(
        v: &Value,
        who: &str,
        default_project: Option<&str>,
    ) -> Result<Firewall, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| format!("{who}: must be an object, found {}", json_kind(v)))?;
        let r = Reader {
            obj,
            who: who.to_string(),
        };
        let name = r
            .string("name")?
            .ok_or_else(|| r.err("field `name` is missing"))?;
        if name.is_empty() {
            return Err(r.err("field `name` is empty"));
        }
        let r = Reader {
            obj,
            who: format!("{who} `{name}`"),
        };
        let network = match r.string("network")? {
            Some(n) => NetworkRef::parse(&n).map_err(|e| r.err(e))?,
            None => NetworkRef {
                project: None,
                name: "default".into(),
            },
        };
        let direction = match r.string("direction")? {
            None => Dir::Ingress,
            Some(d) => match d.trim().to_ascii_uppercase().as_str() {
                "INGRESS" => Dir::Ingress,
                "EGRESS" => Dir::Egress,
                _ => return Err(r.err(format!("direction `{d}` is neither INGRESS nor EGRESS"))),
            },
        };
        let priority = match obj.get("priority") {
            None | Some(Value::Null) => DEFAULT_PRIORITY,
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|p| *p <= MAX_PRIORITY as u64)
                .ok_or_else(|| r.err(format!("priority {n} is not an integer 0-65535")))?
                as u32,
            Some(Value::String(s)) => s
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|p| *p <= MAX_PRIORITY)
                .ok_or_else(|| r.err(format!("priority `{s}` is not an integer 0-65535")))?,
            Some(other) => {
                return Err(r.err(format!(
                    "priority must be a number, found {}",
                    json_kind(other)
                )))
            }
        };
        let mut source_ranges = r.ranges("sourceRanges")?;
        let destination_ranges = r.ranges("destinationRanges")?;
        let source_tags = sorted_strings(&r.strings("sourceTags")?);
        let target_tags = sorted_strings(&r.strings("targetTags")?);
        let source_service_accounts = sorted_strings(&r.strings("sourceServiceAccounts")?);
        let target_service_accounts = sorted_strings(&r.strings("targetServiceAccounts")?);
        let mut destination_ranges = destination_ranges;
        match direction {
            Dir::Ingress => {
                if source_ranges.is_empty()
                    && source_tags.is_empty()
                    && source_service_accounts.is_empty()
                {
                    // the API fills this in (IPv4 only): terraform-provider-google#108
                    source_ranges = vec!["0.0.0.0/0".into()];
                }
            }
            Dir::Egress => {
                if !source_tags.is_empty() || !source_service_accounts.is_empty() {
                    return Err(
                        r.err("an EGRESS rule cannot have sourceTags or sourceServiceAccounts")
                    );
                }
                if destination_ranges.is_empty() {
                    destination_ranges = vec!["0.0.0.0/0".into()];
                }
            }
        }
        if !target_service_accounts.is_empty()
            && (!target_tags.is_empty() || !source_tags.is_empty())
        {
            return Err(
                r.err("targetServiceAccounts cannot be combined with targetTags or sourceTags")
            );
        }
        if !source_service_accounts.is_empty()
            && (!target_tags.is_empty() || !source_tags.is_empty())
        {
            return Err(
                r.err("sourceServiceAccounts cannot be combined with sourceTags or targetTags")
            );
        }
        let (action, list_key) = match (obj.get("allowed"), obj.get("denied")) {
            (Some(a), None | Some(Value::Null)) if !a.is_null() => (Act::Allow, "allowed"),
            (None | Some(Value::Null), Some(d)) if !d.is_null() => (Act::Deny, "denied"),
            (Some(a), Some(d)) if !a.is_null() && !d.is_null() => {
                return Err(r.err("has both `allowed` and `denied`; a rule takes one of them"))
            }
            _ => return Err(r.err("has neither `allowed` nor `denied`")),
        };
        let items = obj[list_key]
            .as_array()
            .ok_or_else(|| r.err(format!("field `{list_key}` must be a list")))?;
        if items.is_empty() {
            return Err(r.err(format!("field `{list_key}` is empty")));
        }
        let mut entries = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let e = Reader {
                obj: it.as_object().ok_or_else(|| {
                    r.err(format!(
                        "`{list_key}[{i}]` must be an object, found {}",
                        json_kind(it)
                    ))
                })?,
                who: format!("{} `{list_key}[{i}]`", r.who),
            };
            let p = e
                .string("IPProtocol")?
                .ok_or_else(|| e.err("field `IPProtocol` is missing"))?;
            let protocol = canonical_protocol(&p).map_err(|m| e.err(m))?;
            let port_texts = e.strings("ports")?;
            let ports = if port_texts.is_empty() {
                None
            } else {
                if !protocol_number(&protocol).is_some_and(proto::has_ports) {
                    return Err(e.err(format!(
                        "ports are only valid for tcp, udp and sctp, not `{p}`"
                    )));
                }
                let mut ranges = Vec::new();
                for t in &port_texts {
                    ranges.push(PortSet::parse_range(t).map_err(|m| e.err(m))?);
                }
                Some(PortSet::from_ranges(ranges))
            };
            entries.push(Entry { protocol, ports });
        }
        let entries = merge_entries(entries);
        let disabled = r.boolean("disabled")?.unwrap_or(false);
        let description = r
            .string("description")?
            .unwrap_or_default()
            .trim()
            .to_string();
        let log = match obj.get("logConfig") {
            None | Some(Value::Null) => None,
            Some(Value::Object(lc)) => {
                let lr = Reader {
                    obj: lc,
                    who: format!("{} `logConfig`", r.who),
                };
                if lr.boolean("enable")?.unwrap_or(false) {
                    Some(
                        lr.string("metadata")?
                            .unwrap_or_else(|| "INCLUDE_ALL_METADATA".into()),
                    )
                } else {
                    None
                }
            }
            Some(other) => {
                return Err(r.err(format!(
                    "logConfig must be an object, found {}",
                    json_kind(other)
                )))
            }
        };
        Ok(Firewall {
            name,
            network: network.canonical(default_project),
            direction,
            priority,
            source_ranges,
            destination_ranges,
            source_tags,
            target_tags,
            source_service_accounts,
            target_service_accounts,
            action,
            entries,
            disabled,
            description,
            log,
        })
    }

    /// Canonical API JSON (defaults explicit, lists sorted, empty lists omitted).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if !self.description.is_empty() {
            m.insert("description".into(), json!(self.description));
        }
        m.insert("network".into(), json!(self.network));
        m.insert("direction".into(), json!(self.direction.as_str()));
        m.insert("priority".into(), json!(self.priority));
        let lists = [
            ("sourceRanges", &self.source_ranges),
            ("destinationRanges", &self.destination_ranges),
            ("sourceTags", &self.source_tags),
            ("sourceServiceAccounts", &self.source_service_accounts),
            ("targetTags", &self.target_tags),
            ("targetServiceAccounts", &self.target_service_accounts),
        ];
        for (k, v) in lists {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        let entries: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                let mut o = Map::new();
                o.insert("IPProtocol".into(), json!(e.protocol));
                if let Some(p) = &e.ports {
                    o.insert("ports".into(), json!(p.to_strings()));
                }
                Value::Object(o)
            })
            .collect();
        let key = match self.action {
            Act::Allow => "allowed",
            Act::Deny => "denied",
        };
        m.insert(key.into(), Value::Array(entries));
        m.insert("disabled".into(), json!(self.disabled));
        let mut lc = Map::new();
        lc.insert("enable".into(), json!(self.log.is_some()));
        if let Some(md) = &self.log {
            lc.insert("metadata".into(), json!(md));
        }
        m.insert("logConfig".into(), Value::Object(lc));
        Value::Object(m)
    }

    /// The flow named by the description marker (`intentwall:<flow>`), if any; it labels
    /// plans and audit events, while ownership goes by name.
    pub fn marker_flow(&self) -> Option<String> {
        let rest = self.description.strip_prefix(crate::MARKER)?;
        let flow: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
        (!flow.is_empty()).then_some(flow)
    }

    /// One human line: what the rule does.
    pub fn summary(&self) -> String {
        let act = match self.action {
            Act::Allow => "allow",
            Act::Deny => "deny",
        };
        let traffic: Vec<String> = self
            .entries
            .iter()
            .map(|e| match &e.ports {
                Some(p) => format!("{}:{}", e.protocol, p.to_strings().join(",")),
                None => e.protocol.clone(),
            })
            .collect();
        let mut peer = Vec::new();
        match self.direction {
            Dir::Ingress => {
                peer.extend(self.source_ranges.iter().cloned());
                peer.extend(self.source_tags.iter().map(|t| format!("tag:{t}")));
                peer.extend(
                    self.source_service_accounts
                        .iter()
                        .map(|t| format!("sa:{t}")),
                );
            }
            Dir::Egress => peer.extend(self.destination_ranges.iter().cloned()),
        }
        let mut targets: Vec<String> = self
            .target_tags
            .iter()
            .map(|t| format!("tag:{t}"))
            .collect();
        targets.extend(
            self.target_service_accounts
                .iter()
                .map(|t| format!("sa:{t}")),
        );
        let targets = if targets.is_empty() {
            "all instances".to_string()
        } else {
            targets.join(",")
        };
        let peer = short_list(&peer);
        let (from, to) = match self.direction {
            Dir::Ingress => (peer, targets),
            Dir::Egress => (targets, peer),
        };
        format!(
            "{}: {} {act} {} from {from} to {to} at priority {}{}",
            self.name,
            self.direction.as_str(),
            traffic.join(","),
            self.priority,
            if self.disabled { " (disabled)" } else { "" }
        )
    }
}

fn short_list(v: &[String]) -> String {
    if v.len() <= 4 {
        v.join(",")
    } else {
        format!("{},… ({} in all)", v[..3].join(","), v.len())
    }
}
