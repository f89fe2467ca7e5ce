//! Canonical AWS rule parts: protocol, ports (or ICMP type/code) and peer, the way intentwall
//! compares them. Everything that AWS treats as the same rule has one canonical form here, so
//! equal bodies mean "no change" (`"6"` = `"tcp"`, `80` = `80-80`, absent ports of `-1`,
//! CIDR host bits, IPv6 compression, description whitespace).

use intentwall_contract::traffic::{proto, Traffic};
use intentwall_contract::PortSet;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Ownership tag key and value on security groups and prefix lists.
pub const TAG_MANAGED_KEY: &str = "managed-by";
/// Value of the ownership tag.
pub const TAG_MANAGED_VALUE: &str = "intentwall";
/// Tag naming the intent group a managed SG stands for.
pub const TAG_GROUP: &str = "intentwall:group";
/// Rule description marker (one for every cloud).
pub use intentwall_contract::MARKER;
/// Object kind of a security group.
pub const KIND_SG: &str = "security-group";
/// Object kind of one atomic SG rule.
pub const KIND_RULE: &str = "sg-rule";
/// Object kind of a customer-managed prefix list.
pub const KIND_PL: &str = "prefix-list";
/// Longest rule description AWS accepts.
pub const MAX_DESCRIPTION: usize = 255;
/// Default quota: rules per SG, per direction, per address family.
pub const MAX_RULES: usize = 60;

/// `IpProtocol`, canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// `-1`: every protocol, ports ignored.
    All,
    /// `tcp` / `6`.
    Tcp,
    /// `udp` / `17`.
    Udp,
    /// `icmp` / `1`.
    Icmp,
    /// `icmpv6` / `58`.
    Icmpv6,
    /// Any other protocol by number: ports ignored by AWS.
    Num(u8),
}

impl Proto {
    /// Parse an `IpProtocol` text as the API accepts it (names or numbers, any case).
    pub fn parse(text: &str) -> Result<Proto, String> {
        let t = text.trim().to_ascii_lowercase();
        let p = match t.as_str() {
            "-1" | "all" => Proto::All,
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" => Proto::Icmp,
            "icmpv6" | "ipv6-icmp" => Proto::Icmpv6,
            "esp" => Proto::Num(proto::ESP),
            "ah" => Proto::Num(proto::AH),
            "gre" => Proto::Num(proto::GRE),
            "sctp" => Proto::Num(proto::SCTP),
            _ => {
                let n: u8 = t.parse().map_err(|_| {
                    format!("IpProtocol `{text}` is not -1, tcp, udp, icmp, icmpv6 or a protocol number 0-255")
                })?;
                Proto::from_number(n)
            }
        };
        Ok(p)
    }

    /// The canonical protocol for an IANA number.
    pub fn from_number(n: u8) -> Proto {
        match n {
            proto::TCP => Proto::Tcp,
            proto::UDP => Proto::Udp,
            proto::ICMP => Proto::Icmp,
            proto::ICMPV6 => Proto::Icmpv6,
            n => Proto::Num(n),
        }
    }

    /// Canonical text used in bodies.
    pub fn canonical(self) -> String {
        match self {
            Proto::All => "-1".into(),
            Proto::Tcp => "tcp".into(),
            Proto::Udp => "udp".into(),
            Proto::Icmp => "icmp".into(),
            Proto::Icmpv6 => "icmpv6".into(),
            Proto::Num(n) => n.to_string(),
        }
    }

    /// Text as `describe-security-groups` prints it (ICMPv6 comes back as `58`).
    pub fn api_text(self) -> String {
        match self {
            Proto::Icmpv6 => "58".into(),
            p => p.canonical(),
        }
    }

    /// Short name used in keys and summaries.
    pub fn key_text(self) -> String {
        match self {
            Proto::All => "all".into(),
            p => p.canonical(),
        }
    }

    /// IANA number, `None` for all protocols.
    pub fn number(self) -> Option<u8> {
        match self {
            Proto::All => None,
            Proto::Tcp => Some(proto::TCP),
            Proto::Udp => Some(proto::UDP),
            Proto::Icmp => Some(proto::ICMP),
            Proto::Icmpv6 => Some(proto::ICMPV6),
            Proto::Num(n) => Some(n),
        }
    }
}

/// Port part of a rule, canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ports {
    /// No port selection (protocol `-1` or a number other than tcp/udp/icmp/icmpv6).
    None,
    /// TCP/UDP inclusive range.
    Range(u16, u16),
    /// ICMP/ICMPv6 type and code, -1 = all.
    Icmp(i16, i16),
}

impl Ports {
    /// Canonical ports of `proto` from `FromPort`/`ToPort` as read.
    pub fn from_api(p: Proto, from: Option<i64>, to: Option<i64>) -> Result<Ports, String> {
        match p {
            Proto::All | Proto::Num(_) => Ok(Ports::None),
            Proto::Tcp | Proto::Udp => {
                // -1 (or absent) at either end is the open end (as Batfish reads it)
                let f = match from {
                    None | Some(-1) => 0,
                    Some(x) if (0..=65535).contains(&x) => x as u16,
                    Some(x) => return Err(format!("FromPort {x} is out of range 0-65535")),
                };
                let t = match to {
                    None | Some(-1) => 65535,
                    Some(x) if (0..=65535).contains(&x) => x as u16,
                    Some(x) => return Err(format!("ToPort {x} is out of range 0-65535")),
                };
                if f > t {
                    return Err(format!("FromPort {f} is greater than ToPort {t}"));
                }
                Ok(Ports::Range(f, t))
            }
            Proto::Icmp | Proto::Icmpv6 => {
                let ty = from.unwrap_or(-1);
                let code = to.unwrap_or(-1);
                if !(-1..=255).contains(&ty) {
                    return Err(format!("ICMP type (FromPort) {ty} is out of range -1..255"));
                }
                if !(-1..=255).contains(&code) {
                    return Err(format!("ICMP code (ToPort) {code} is out of range -1..255"));
                }
                Ok(Ports::Icmp(ty as i16, code as i16))
            }
        }
    }

    /// `FromPort`/`ToPort` to write, if any.
    pub fn api(self) -> Option<(i64, i64)> {
        match self {
            Ports::None => None,
            Ports::Range(a, b) => Some((a as i64, b as i64)),
            Ports::Icmp(t, c) => Some((t as i64, c as i64)),
        }
    }

    /// Key segment: `443-443`, `8:any`, `any:any`, `any`.
    pub fn key_text(self) -> String {
        let n = |x: i16| {
            if x < 0 {
                "any".to_string()
            } else {
                x.to_string()
            }
        };
        match self {
            Ports::None => "any".into(),
            Ports::Range(a, b) => format!("{a}-{b}"),
            Ports::Icmp(t, c) => format!("{}:{}", n(t), n(c)),
        }
    }
}

/// Protocol and ports of one rule: the unit AWS matches packets by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Perm {
    /// Protocol.
    pub proto: Proto,
    /// Ports or ICMP type/code.
    pub ports: Ports,
}

impl Perm {
    /// The packets AWS matches with this protocol/ports, in the contract's terms. `None` for a
    /// rule that matches nothing (ICMP with type -1 and a specific code, which AWS refuses and
    /// Batfish reads as matching nothing).
    pub fn traffic(self) -> Option<Traffic> {
        match (self.proto, self.ports) {
            (Proto::All, _) => Some(Traffic::any()),
            (Proto::Tcp, Ports::Range(a, b)) => {
                Some(Traffic::ports(proto::TCP, PortSet::range(a, b)))
            }
            (Proto::Udp, Ports::Range(a, b)) => {
                Some(Traffic::ports(proto::UDP, PortSet::range(a, b)))
            }
            (Proto::Tcp | Proto::Udp, _) => self.proto.number().map(Traffic::proto),
            (Proto::Icmp | Proto::Icmpv6, Ports::Icmp(t, c)) => {
                let mut tr = Traffic::proto(self.proto.number().unwrap_or(proto::ICMP));
                if t < 0 {
                    if c >= 0 {
                        return None;
                    }
                } else {
                    tr.icmp_type = Some(t as u8);
                    if c >= 0 {
                        tr.icmp_code = Some(c as u8);
                    }
                }
                Some(tr)
            }
            (Proto::Icmp | Proto::Icmpv6, _) => self.proto.number().map(Traffic::proto),
            // AWS ignores ports for every other protocol
            (Proto::Num(n), _) => Some(Traffic::proto(n)),
        }
    }
}

impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.proto, self.ports) {
            (Proto::All, _) => f.write_str("all traffic"),
            (p, Ports::None) => f.write_str(&p.key_text()),
            (p, Ports::Range(a, b)) if a == b => write!(f, "{}/{a}", p.key_text()),
            (p, ports) => write!(f, "{}/{}", p.key_text(), ports.key_text()),
        }
    }
}

/// The other side of a rule (source for ingress, destination for egress).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Peer {
    /// IPv4 CIDR, canonical.
    CidrIp(String),
    /// IPv6 CIDR, canonical.
    CidrIpv6(String),
    /// A security group of this VPC, by name (resolved from its GroupId through the document).
    GroupName(String),
    /// A security group not in the document (other VPC/account), by id.
    GroupId {
        /// `sg-…`.
        id: String,
        /// Owning account, if given.
        user_id: Option<String>,
        /// VPC of the referenced group, if given.
        vpc_id: Option<String>,
        /// Peering connection, if given.
        peering: Option<String>,
    },
    /// A prefix list of the document, by name.
    PrefixListName(String),
    /// A prefix list not in the document, by id.
    PrefixListId(String),
}

impl Peer {
    /// Key segment: `cidr:…`, `cidr6:…`, `sg:…`, `sgid:…`, `pl:…`.
    pub fn key_text(&self) -> String {
        match self {
            Peer::CidrIp(c) => format!("cidr:{c}"),
            Peer::CidrIpv6(c) => format!("cidr6:{c}"),
            Peer::GroupName(n) => format!("sg:{n}"),
            Peer::GroupId { id, .. } => format!("sgid:{id}"),
            Peer::PrefixListName(n) => format!("pl:{n}"),
            Peer::PrefixListId(i) => format!("pl:{i}"),
        }
    }

    /// Human text for summaries.
    pub fn human(&self) -> String {
        match self {
            Peer::CidrIp(c) | Peer::CidrIpv6(c) => c.clone(),
            Peer::GroupName(n) => format!("SG {n}"),
            Peer::GroupId { id, .. } => format!("SG {id}"),
            Peer::PrefixListName(n) | Peer::PrefixListId(n) => format!("prefix list {n}"),
        }
    }

    /// Which address family's quota the rule counts against (SG references and IPv4 prefix
    /// lists count as IPv4: decision, see README).
    pub fn is_v6(&self) -> bool {
        matches!(self, Peer::CidrIpv6(_))
    }
}

/// Ingress or egress, as used in keys and bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// `IpPermissions`.
    Ingress,
    /// `IpPermissionsEgress`.
    Egress,
}

impl Dir {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Ingress => "ingress",
            Dir::Egress => "egress",
        }
    }
    /// Document field holding this direction's permissions.
    pub fn field(self) -> &'static str {
        match self {
            Dir::Ingress => "IpPermissions",
            Dir::Egress => "IpPermissionsEgress",
        }
    }
}

/// One atomic rule, canonical: what the body of an `sg-rule` object holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Name of the SG holding it.
    pub group_name: String,
    /// Direction.
    pub dir: Dir,
    /// Protocol and ports.
    pub perm: Perm,
    /// Other side.
    pub peer: Peer,
    /// Trimmed description, `None` when empty.
    pub description: Option<String>,
}

impl Rule {
    /// The object key: `sg:<GroupName>/<dir>/<proto>/<ports>/<peer>`.
    pub fn key(&self) -> String {
        self.key_under(&format!("sg:{}", self.group_name))
    }

    /// The key under a given container key.
    pub fn key_under(&self, parent: &str) -> String {
        format!(
            "{parent}/{}/{}/{}/{}",
            self.dir.as_str(),
            self.perm.proto.key_text(),
            self.perm.ports.key_text(),
            self.peer.key_text()
        )
    }

    /// Canonical body.
    pub fn body(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("Direction".into(), self.dir.as_str().into());
        m.insert("IpProtocol".into(), self.perm.proto.canonical().into());
        if let Some((a, b)) = self.perm.ports.api() {
            m.insert("FromPort".into(), a.into());
            m.insert("ToPort".into(), b.into());
        }
        let mut peer = serde_json::Map::new();
        match &self.peer {
            Peer::CidrIp(c) => {
                peer.insert("CidrIp".into(), c.clone().into());
            }
            Peer::CidrIpv6(c) => {
                peer.insert("CidrIpv6".into(), c.clone().into());
            }
            Peer::GroupName(n) => {
                peer.insert("GroupName".into(), n.clone().into());
            }
            Peer::GroupId {
                id,
                user_id,
                vpc_id,
                peering,
            } => {
                insert_group_ref(&mut peer, id, user_id, vpc_id, peering);
            }
            Peer::PrefixListName(n) => {
                peer.insert("PrefixListName".into(), n.clone().into());
            }
            Peer::PrefixListId(i) => {
                peer.insert("PrefixListId".into(), i.clone().into());
            }
        }
        m.insert("Peer".into(), peer.into());
        if let Some(d) = &self.description {
            m.insert("Description".into(), d.clone().into());
        }
        serde_json::Value::Object(m)
    }

    /// Read a canonical body back (the inverse of [`Rule::body`]); `None` if it is not one.
    pub fn from_body(group_name: &str, body: &serde_json::Value) -> Option<Rule> {
        let o = body.as_object()?;
        let dir = match o.get("Direction")?.as_str()? {
            "ingress" => Dir::Ingress,
            "egress" => Dir::Egress,
            _ => return None,
        };
        let proto = Proto::parse(o.get("IpProtocol")?.as_str()?).ok()?;
        let ports = Ports::from_api(
            proto,
            o.get("FromPort").and_then(|v| v.as_i64()),
            o.get("ToPort").and_then(|v| v.as_i64()),
        )
        .ok()?;
        let p = o.get("Peer")?.as_object()?;
        let s = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let peer = if let Some(c) = s("CidrIp") {
            Peer::CidrIp(c)
        } else if let Some(c) = s("CidrIpv6") {
            Peer::CidrIpv6(c)
        } else if let Some(n) = s("GroupName") {
            Peer::GroupName(n)
        } else if let Some(id) = s("GroupId") {
            Peer::GroupId {
                id,
                user_id: s("UserId"),
                vpc_id: s("VpcId"),
                peering: s("VpcPeeringConnectionId"),
            }
        } else if let Some(n) = s("PrefixListName") {
            Peer::PrefixListName(n)
        } else {
            Peer::PrefixListId(s("PrefixListId")?)
        };
        Some(Rule {
            group_name: group_name.to_string(),
            dir,
            perm: Perm { proto, ports },
            peer,
            description: o
                .get("Description")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        })
    }

    /// One human line.
    pub fn summary(&self) -> String {
        let (word, prep) = match self.dir {
            Dir::Ingress => ("ingress", "from"),
            Dir::Egress => ("egress", "to"),
        };
        format!(
            "{}: {word} allow {} {prep} {}",
            self.group_name,
            self.perm,
            self.peer.human()
        )
    }
}

/// Write a reference to a security group outside the document (another VPC, account or a
/// peering) in the API's field names: shared by canonical bodies and rendered documents.
pub fn insert_group_ref(
    m: &mut serde_json::Map<String, serde_json::Value>,
    id: &str,
    user_id: &Option<String>,
    vpc_id: &Option<String>,
    peering: &Option<String>,
) {
    m.insert("GroupId".into(), id.into());
    for (k, v) in [
        ("UserId", user_id),
        ("VpcId", vpc_id),
        ("VpcPeeringConnectionId", peering),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v.as_str().into());
        }
    }
}

/// Characters AWS accepts in rule descriptions (besides ASCII letters and digits).
const DESC_EXTRA: &str = " ._-:/()#,@[]+=;{}!$*";

/// Replace characters AWS refuses in descriptions with `_`.
pub fn sanitize_description(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || DESC_EXTRA.contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The managed description for a rule produced by `flows`: `intentwall:a,b`, cut to 255
/// characters with a `,(+N more)` marker that keeps the `intentwall:` prefix.
pub fn marker_description<'a>(flows: impl IntoIterator<Item = &'a str>) -> String {
    let flows: Vec<String> = flows.into_iter().map(sanitize_description).collect();
    let full = format!("{MARKER}{}", flows.join(","));
    if full.len() <= MAX_DESCRIPTION {
        return full;
    }
    // the most flows that fit with the `(+N more)` marker; lengths are summed, not joined
    // per candidate (quadratic for rules serving many flows)
    let mut kept_len: Vec<usize> = vec![0]; // length of `flows[..k].join(",")`
    for (i, f) in flows.iter().enumerate() {
        kept_len.push(kept_len[i] + f.len() + usize::from(i > 0));
    }
    for k in (0..flows.len()).rev() {
        let more = format!("(+{} more)", flows.len() - k);
        if MARKER.len() + kept_len[k] + usize::from(k > 0) + more.len() <= MAX_DESCRIPTION {
            let sep = if k == 0 { "" } else { "," };
            return format!("{MARKER}{}{sep}{more}", flows[..k].join(","));
        }
    }
    let mut s = full;
    s.truncate(MAX_DESCRIPTION);
    s
}

/// Deterministic pseudo id (`sg-` / `pl-` + 17 hex) for objects not created yet.
pub fn synthetic_id(prefix: &str, parts: &[&str]) -> String {
    // every part ends with a zero byte, so ["ab", "c"] and ["a", "bc"] hash apart
    let fnv = |seed: u64| {
        let bytes = parts
            .iter()
            .flat_map(|p| p.bytes().chain(std::iter::once(0u8)));
        intentwall_contract::fnv1a64(seed, bytes)
    };
    let hex = format!("{:016x}{:016x}", fnv(0), fnv(0x9e37_79b9));
    format!("{prefix}-{}", &hex[..17])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The description as it was built: one join per candidate count.
    fn marker_by_joins(flows: &[String]) -> String {
        let flows: Vec<String> = flows.iter().map(|f| sanitize_description(f)).collect();
        let full = format!("{MARKER}{}", flows.join(","));
        if full.len() <= MAX_DESCRIPTION {
            return full;
        }
        for k in (0..flows.len()).rev() {
            let kept = flows[..k].join(",");
            let sep = if k == 0 { "" } else { "," };
            let cand = format!("{MARKER}{kept}{sep}(+{} more)", flows.len() - k);
            if cand.len() <= MAX_DESCRIPTION {
                return cand;
            }
        }
        let mut s = full;
        s.truncate(MAX_DESCRIPTION);
        s
    }

    proptest! {
        #[test]
        fn marker_by_lengths_equals_marker_by_joins(
            flows in proptest::collection::vec("[a-z0-9é-]{0,40}", 0..60))
        {
            let got = marker_description(flows.iter().map(String::as_str));
            prop_assert_eq!(&got, &marker_by_joins(&flows));
            prop_assert!(got.len() <= MAX_DESCRIPTION);
        }
    }
}
