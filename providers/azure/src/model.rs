//! One NSG security rule in canonical form, read from either JSON shape the Azure tools
//! print (az CLI flattened, ARM `properties`, python-SDK snake_case) and written back as
//! canonical body or in the CLI/ARM shapes.

use intentwall_contract::net::canonical_cidr;
use intentwall_contract::{Action, PortSet, SnapshotError};
use serde_json::{json, Map, Value};

/// Inbound or outbound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    /// Arriving at the NIC/subnet.
    Inbound,
    /// Leaving it.
    Outbound,
}

impl Dir {
    /// Azure's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Inbound => "Inbound",
            Dir::Outbound => "Outbound",
        }
    }
    /// Index for per-direction tables.
    pub fn idx(self) -> usize {
        match self {
            Dir::Inbound => 0,
            Dir::Outbound => 1,
        }
    }
}

/// The protocols an NSG rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// `Tcp`
    Tcp,
    /// `Udp`
    Udp,
    /// `Icmp` (ICMPv4 and ICMPv6; see the crate docs)
    Icmp,
    /// `Esp`
    Esp,
    /// `Ah`
    Ah,
    /// `*`
    Any,
}

impl Proto {
    /// Azure's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "Tcp",
            Proto::Udp => "Udp",
            Proto::Icmp => "Icmp",
            Proto::Esp => "Esp",
            Proto::Ah => "Ah",
            Proto::Any => "*",
        }
    }
    /// Parse a protocol as written (any case, `Any`/`All`, or an IANA number).
    pub fn parse(s: &str) -> Option<Proto> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "tcp" | "6" => Proto::Tcp,
            "udp" | "17" => Proto::Udp,
            "icmp" | "1" => Proto::Icmp,
            "esp" | "50" => Proto::Esp,
            "ah" | "51" => Proto::Ah,
            "*" | "any" | "all" => Proto::Any,
            _ => return None,
        })
    }
}

/// One side of a rule: address prefixes / service tags, or application security groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Side {
    /// Canonical prefixes (`*`, service tags, CIDRs), sorted.
    pub prefixes: Vec<String>,
    /// ASG ids, lowercased, sorted.
    pub asgs: Vec<String>,
}

/// One security rule, canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzRule {
    /// Rule name (unique in the NSG).
    pub name: String,
    /// Inbound or outbound.
    pub dir: Dir,
    /// Allow or deny.
    pub access: Action,
    /// 100-4096 for user rules.
    pub priority: u32,
    /// Protocol.
    pub proto: Proto,
    /// Description, whitespace collapsed.
    pub description: String,
    /// Source side.
    pub src: Side,
    /// Destination side.
    pub dst: Side,
    /// Source port ranges, canonical (`*` or merged ranges).
    pub src_ports: Vec<String>,
    /// Destination port ranges, canonical.
    pub dst_ports: Vec<String>,
}

/// Known service tags in their canonical spelling (the classic aliases map to them).
pub fn canonical_tag(s: &str) -> Option<&'static str> {
    Some(match s.to_ascii_lowercase().as_str() {
        "virtualnetwork" | "virtual_network" => "VirtualNetwork",
        "internet" => "Internet",
        "azureloadbalancer" | "azure_loadbalancer" => "AzureLoadBalancer",
        _ => return None,
    })
}

/// The canonical text of one address prefix item. Errors on text that looks like an
/// address but is not one.
pub fn canonical_prefix(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t == "*" || t.eq_ignore_ascii_case("any") {
        return Ok("*".into());
    }
    if let Some(tag) = canonical_tag(t) {
        return Ok(tag.into());
    }
    let looks_like_addr =
        t.contains(':') || t.contains('/') || t.chars().next().is_some_and(|c| c.is_ascii_digit());
    if looks_like_addr {
        return canonical_cidr(t).ok_or_else(|| format!("invalid address prefix `{t}`"));
    }
    if t.is_empty()
        || !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(format!("invalid address prefix or service tag `{t}`"));
    }
    // another service tag (Storage, AzureCloud.WestEurope, ...), kept as written
    Ok(t.to_string())
}

fn prefix_sort_key(s: &str) -> (u8, String, u8, String) {
    match s.parse::<ipnet::IpNet>() {
        Ok(ipnet::IpNet::V4(n)) => (
            1,
            format!("{:010}", u32::from(n.network())),
            n.prefix_len(),
            String::new(),
        ),
        Ok(ipnet::IpNet::V6(n)) => (
            2,
            format!("{:039}", u128::from(n.network())),
            n.prefix_len(),
            String::new(),
        ),
        Err(_) if s == "*" => (0, String::new(), 0, String::new()),
        Err(_) => (3, String::new(), 0, s.to_string()),
    }
}

/// Sort, dedup, and reduce a list containing `*` to `*`.
pub fn canonical_prefix_list(mut v: Vec<String>) -> Vec<String> {
    if v.iter().any(|p| p == "*") {
        return vec!["*".into()];
    }
    v.sort_by_cached_key(|p| prefix_sort_key(p));
    v.dedup();
    v
}

/// Canonical port ranges: `*` for every port, else merged `a` / `a-b` items.
pub fn canonical_ports(items: &[String]) -> Result<Vec<String>, String> {
    let mut ranges = Vec::new();
    for it in items {
        let t = it.trim();
        if t == "*" || t.eq_ignore_ascii_case("any") {
            return Ok(vec!["*".into()]);
        }
        ranges.push(PortSet::parse_range(t).map_err(|e| format!("port range `{t}`: {e}"))?);
    }
    let set = PortSet::from_ranges(ranges);
    if set.is_full() {
        return Ok(vec!["*".into()]);
    }
    Ok(set.to_strings())
}

/// Port items as a set (`*` = every port).
pub fn port_set(items: &[String]) -> PortSet {
    let mut ranges = Vec::new();
    for it in items {
        if it == "*" {
            return PortSet::full();
        }
        if let Ok(r) = PortSet::parse_range(it) {
            ranges.push(r);
        }
    }
    PortSet::from_ranges(ranges)
}

/// An ARM id with the fixed segments in their usual spelling (canonical bodies keep ids
/// lowercased; Azure compares ids case-insensitively).
pub fn pretty_id(id: &str) -> String {
    id.split('/')
        .map(|seg| {
            const KNOWN: [&str; 5] = [
                "subscriptions",
                "resourceGroups",
                "providers",
                "Microsoft.Network",
                "applicationSecurityGroups",
            ];
            KNOWN
                .iter()
                .find(|k| k.eq_ignore_ascii_case(seg))
                .map(|k| k.to_string())
                .unwrap_or_else(|| seg.to_string())
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Collapse whitespace runs to one space and trim.
pub fn normalise_description(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// camelCase -> snake_case, for the python-SDK shape.
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Where a rule's fields live: the object itself, or its `properties`.
struct Fields<'a> {
    top: &'a Map<String, Value>,
    props: Option<&'a Map<String, Value>>,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        let sk = snake(key);
        let look = |m: &'a Map<String, Value>| {
            m.get(key)
                .filter(|v| !v.is_null())
                .or_else(|| m.get(&sk).filter(|v| !v.is_null()))
        };
        self.props.and_then(look).or_else(|| look(self.top))
    }
}

/// An error about one rule of one NSG.
fn rule_err(nsg: &str, rule: &str, msg: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::msg(format!("NSG `{nsg}`, security rule `{rule}`: {msg}"))
}

fn get_str<'a>(
    f: &Fields<'a>,
    key: &str,
    nsg: &str,
    rule: &str,
) -> Result<Option<&'a str>, SnapshotError> {
    match f.get(key) {
        None => Ok(None),
        // an empty singular next to its plural list is how some exports write "unset"
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(rule_err(
            nsg,
            rule,
            format!("`{key}` must be a string, found {other}"),
        )),
    }
}

fn get_str_list(
    f: &Fields<'_>,
    key: &str,
    nsg: &str,
    rule: &str,
) -> Result<Vec<String>, SnapshotError> {
    match f.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(rule_err(
                    nsg,
                    rule,
                    format!("`{key}` items must be strings, found {other}"),
                )),
            })
            .collect(),
        Some(Value::String(s)) => Ok(s.split(',').map(|x| x.trim().to_string()).collect()),
        Some(other) => Err(rule_err(
            nsg,
            rule,
            format!("`{key}` must be a list of strings, found {other}"),
        )),
    }
}

fn get_asgs(
    f: &Fields<'_>,
    key: &str,
    nsg: &str,
    rule: &str,
) -> Result<Vec<String>, SnapshotError> {
    let mut out = match f.get(key) {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let mut v = Vec::new();
            for it in items {
                let id = match it {
                    Value::Object(m) => m.get("id").and_then(Value::as_str),
                    Value::String(s) => Some(s.as_str()),
                    _ => None,
                };
                match id {
                    Some(id) if !id.trim().is_empty() => v.push(id.trim().to_ascii_lowercase()),
                    _ => {
                        return Err(rule_err(
                            nsg,
                            rule,
                            format!("`{key}` items must be objects with an `id`, found {it}"),
                        ))
                    }
                }
            }
            v
        }
        Some(other) => {
            return Err(rule_err(
                nsg,
                rule,
                format!("`{key}` must be a list of {{\"id\": ...}}, found {other}"),
            ))
        }
    };
    out.sort();
    out.dedup();
    Ok(out)
}

fn side(f: &Fields<'_>, which: &str, nsg: &str, rule: &str) -> Result<Side, SnapshotError> {
    let mut items = Vec::new();
    if let Some(s) = get_str(f, &format!("{which}AddressPrefix"), nsg, rule)? {
        items.push(s.to_string());
    }
    items.extend(get_str_list(
        f,
        &format!("{which}AddressPrefixes"),
        nsg,
        rule,
    )?);
    let mut prefixes = Vec::new();
    for it in &items {
        prefixes
            .push(canonical_prefix(it).map_err(|e| rule_err(nsg, rule, format!("{which}: {e}")))?);
    }
    let asgs = get_asgs(f, &format!("{which}ApplicationSecurityGroups"), nsg, rule)?;
    if prefixes.is_empty() && asgs.is_empty() {
        return Err(rule_err(
            nsg,
            rule,
            format!("no {which} (neither `{which}AddressPrefix(es)` nor `{which}ApplicationSecurityGroups`)"),
        ));
    }
    Ok(Side {
        prefixes: canonical_prefix_list(prefixes),
        asgs,
    })
}

fn ports(f: &Fields<'_>, which: &str, nsg: &str, rule: &str) -> Result<Vec<String>, SnapshotError> {
    let mut items = Vec::new();
    match f.get(&format!("{which}PortRange")) {
        None => {}
        Some(Value::String(s)) if s.trim().is_empty() => {}
        Some(Value::String(s)) => items.push(s.clone()),
        Some(Value::Number(n)) => items.push(n.to_string()),
        Some(other) => {
            return Err(rule_err(
                nsg,
                rule,
                format!("`{which}PortRange` must be a string, found {other}"),
            ))
        }
    }
    items.extend(get_str_list(f, &format!("{which}PortRanges"), nsg, rule)?);
    if items.is_empty() {
        // the API default when neither form is given
        return Ok(vec!["*".into()]);
    }
    canonical_ports(&items).map_err(|e| rule_err(nsg, rule, e))
}

impl AzRule {
    /// Read a rule in any supported shape. `nsg` names the NSG in error messages.
    pub fn from_json(v: &Value, nsg: &str) -> Result<AzRule, SnapshotError> {
        let top = v.as_object().ok_or_else(|| {
            SnapshotError::msg(format!(
                "NSG `{nsg}`: a security rule must be an object, found {v}"
            ))
        })?;
        let props = match top.get("properties") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                return Err(SnapshotError::msg(format!(
                    "NSG `{nsg}`: security rule `properties` must be an object, found {other}"
                )))
            }
        };
        let f = Fields { top, props };
        let name = match top.get("name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                return Err(SnapshotError::msg(format!(
                    "NSG `{nsg}`: a security rule has no `name`"
                )))
            }
        };
        let req = |key: &str| -> Result<&Value, SnapshotError> {
            f.get(key)
                .ok_or_else(|| rule_err(nsg, &name, format!("missing required field `{key}`")))
        };
        let dir = match req("direction")?
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("inbound") => Dir::Inbound,
            Some("outbound") => Dir::Outbound,
            _ => {
                return Err(rule_err(
                    nsg,
                    &name,
                    format!(
                        "`direction` must be Inbound or Outbound, found {}",
                        req("direction")?
                    ),
                ))
            }
        };
        let access = match req("access")?
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("allow") => Action::Allow,
            Some("deny") => Action::Deny,
            _ => {
                return Err(rule_err(
                    nsg,
                    &name,
                    format!("`access` must be Allow or Deny, found {}", req("access")?),
                ))
            }
        };
        let pv = req("priority")?;
        let priority = pv
            .as_u64()
            .or_else(|| pv.as_str().and_then(|s| s.trim().parse::<u64>().ok()))
            .and_then(|p| u32::try_from(p).ok())
            .ok_or_else(|| {
                rule_err(
                    nsg,
                    &name,
                    format!("`priority` must be a whole number, found {pv}"),
                )
            })?;
        let prv = req("protocol")?;
        let proto = prv
            .as_str()
            .map(str::to_string)
            .or_else(|| prv.as_u64().map(|n| n.to_string()))
            .and_then(|s| Proto::parse(&s))
            .ok_or_else(|| {
                rule_err(
                    nsg,
                    &name,
                    format!("`protocol` must be one of Tcp, Udp, Icmp, Esp, Ah, *; found {prv}"),
                )
            })?;
        let description =
            normalise_description(get_str(&f, "description", nsg, &name)?.unwrap_or(""));
        Ok(AzRule {
            src: side(&f, "source", nsg, &name)?,
            dst: side(&f, "destination", nsg, &name)?,
            src_ports: ports(&f, "source", nsg, &name)?,
            dst_ports: ports(&f, "destination", nsg, &name)?,
            name,
            dir,
            access,
            priority,
            proto,
            description,
        })
    }

    /// Is it one of ours, in the NSG we manage? The `iw-` name prefix is reserved there, so
    /// the name alone decides: a rule edited by hand (its description included) is still
    /// ours and is planned back to the intent, and one someone else named `iw-…` is ours to
    /// delete. The description only names the flow ([`AzRule::flow`]).
    pub fn is_managed(&self) -> bool {
        self.name.starts_with(crate::OWNED_PREFIX)
    }

    /// The flow named by the description marker, if any.
    pub fn flow(&self) -> Option<String> {
        let rest = self.description.strip_prefix(crate::MARKER)?;
        let f = rest.split_whitespace().next().unwrap_or("");
        if rest.starts_with(char::is_whitespace) || f.is_empty() {
            None
        } else {
            Some(f.to_string())
        }
    }

    /// The canonical body: one fixed key order, plural list forms only, ids lowercased.
    pub fn body(&self) -> Value {
        json!({
            "name": self.name,
            "direction": self.dir.as_str(),
            "access": crate::access_str(self.access),
            "priority": self.priority,
            "protocol": self.proto.as_str(),
            "description": self.description,
            "sourceAddressPrefixes": self.src.prefixes,
            "sourceApplicationSecurityGroups": self.src.asgs.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            "sourcePortRanges": self.src_ports,
            "destinationAddressPrefixes": self.dst.prefixes,
            "destinationApplicationSecurityGroups": self.dst.asgs.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            "destinationPortRanges": self.dst_ports,
        })
    }

    /// The rule's fields as the API names them (singular when one item, as the CLI prints).
    fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("access".into(), json!(crate::access_str(self.access)));
        m.insert("description".into(), json!(self.description));
        let side = |m: &mut Map<String, Value>, which: &str, s: &Side, ports: &[String]| {
            if s.asgs.is_empty() {
                if s.prefixes.len() == 1 {
                    m.insert(format!("{which}AddressPrefix"), json!(s.prefixes[0]));
                    m.insert(format!("{which}AddressPrefixes"), json!([]));
                } else {
                    m.insert(format!("{which}AddressPrefixes"), json!(s.prefixes));
                }
            } else {
                if !s.prefixes.is_empty() {
                    m.insert(format!("{which}AddressPrefixes"), json!(s.prefixes));
                }
                m.insert(
                    format!("{which}ApplicationSecurityGroups"),
                    Value::Array(
                        s.asgs
                            .iter()
                            .map(|id| json!({ "id": pretty_id(id) }))
                            .collect(),
                    ),
                );
            }
            if ports.len() == 1 {
                m.insert(format!("{which}PortRange"), json!(ports[0]));
                m.insert(format!("{which}PortRanges"), json!([]));
            } else {
                m.insert(format!("{which}PortRanges"), json!(ports));
            }
        };
        side(&mut m, "destination", &self.dst, &self.dst_ports);
        m.insert("direction".into(), json!(self.dir.as_str()));
        m.insert("priority".into(), json!(self.priority));
        m.insert("protocol".into(), json!(self.proto.as_str()));
        side(&mut m, "source", &self.src, &self.src_ports);
        m
    }

    /// The az CLI (flattened) shape.
    pub fn to_cli(&self, id: Option<String>, resource_group: Option<String>) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(id) = id {
            m.insert("id".into(), json!(id));
        }
        if let Some(rg) = resource_group {
            m.insert("resourceGroup".into(), json!(rg));
        }
        m.insert(
            "type".into(),
            json!("Microsoft.Network/networkSecurityGroups/securityRules"),
        );
        m.extend(self.fields());
        Value::Object(m)
    }

    /// The ARM shape (`properties`).
    pub fn to_arm(&self, id: Option<String>) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(id) = id {
            m.insert("id".into(), json!(id));
        }
        m.insert(
            "type".into(),
            json!("Microsoft.Network/networkSecurityGroups/securityRules"),
        );
        m.insert("properties".into(), Value::Object(self.fields()));
        Value::Object(m)
    }

    /// One human line.
    pub fn summary(&self) -> String {
        let side = |s: &Side| {
            let mut v: Vec<String> = s.prefixes.clone();
            v.extend(
                s.asgs
                    .iter()
                    .map(|id| format!("asg:{}", id.rsplit('/').next().unwrap_or(id))),
            );
            v.join(",")
        };
        format!(
            "{}: {} {} {} {} from {} to {} ports {}",
            self.name,
            self.dir.as_str(),
            self.priority,
            crate::access_str(self.access),
            self.proto.as_str(),
            side(&self.src),
            side(&self.dst),
            self.dst_ports.join(",")
        )
    }
}
