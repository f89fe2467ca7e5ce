//! Services as packet sets: protocol plus destination ports or ICMP type/code.
//!
//! One token of the intent language (`tcp/443`, `icmp/8/0`, `esp`, `ip/47`, `any`, …) is one
//! [`Traffic`]; a probe's packet is one [`Packet`]. Both sides of every comparison (oracle and
//! lowered cloud rules) use this one matcher, so "matches tcp/80" means the same everywhere.

use crate::net::PortSet;
use serde::{Deserialize, Serialize};
use std::fmt;

/// IANA protocol numbers intentwall names.
pub mod proto {
    /// ICMP (IPv4).
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// GRE.
    pub const GRE: u8 = 47;
    /// ESP (IPsec).
    pub const ESP: u8 = 50;
    /// AH (IPsec).
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;

    /// True for protocols whose packets carry destination ports that firewalls can select.
    pub fn has_ports(p: u8) -> bool {
        matches!(p, TCP | UDP | SCTP)
    }
    /// True for ICMP and ICMPv6, whose packets carry a type and a code.
    pub fn is_icmp(p: u8) -> bool {
        matches!(p, ICMP | ICMPV6)
    }
    /// Name of a protocol number, or the number as text.
    pub fn name(p: u8) -> String {
        match p {
            ICMP => "icmp".into(),
            TCP => "tcp".into(),
            UDP => "udp".into(),
            GRE => "gre".into(),
            ESP => "esp".into(),
            AH => "ah".into(),
            ICMPV6 => "icmpv6".into(),
            SCTP => "sctp".into(),
            n => format!("ip/{n}"),
        }
    }
}

/// A set of packets: one service token, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Traffic {
    /// IP protocol number; `None` is every protocol (`any`).
    pub proto: Option<u8>,
    /// Destination ports, meaningful for tcp/udp/sctp only; full set = all ports.
    pub ports: PortSet,
    /// ICMP/ICMPv6 type; `None` = every type. Meaningful for ICMP protocols only.
    pub icmp_type: Option<u8>,
    /// ICMP/ICMPv6 code; `None` = every code. Only set together with a type.
    pub icmp_code: Option<u8>,
}

/// One packet of a probe: what a firewall can see beyond the addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Packet {
    /// IP protocol number.
    pub proto: u8,
    /// Destination port (tcp/udp/sctp), else 0.
    pub port: u16,
    /// ICMP type (ICMP protocols), else 0.
    pub icmp_type: u8,
    /// ICMP code (ICMP protocols), else 0.
    pub icmp_code: u8,
}

impl Packet {
    /// A tcp/udp/sctp packet to `port`.
    pub fn ported(proto: u8, port: u16) -> Self {
        Packet {
            proto,
            port,
            icmp_type: 0,
            icmp_code: 0,
        }
    }
    /// An ICMP or ICMPv6 packet.
    pub fn icmp(proto: u8, t: u8, c: u8) -> Self {
        Packet {
            proto,
            port: 0,
            icmp_type: t,
            icmp_code: c,
        }
    }
}

impl Packet {
    /// False for packets that cannot exist: ICMPv4 over IPv6, or ICMPv6 over IPv4.
    pub fn fits_family(&self, ipv4: bool) -> bool {
        !((ipv4 && self.proto == proto::ICMPV6) || (!ipv4 && self.proto == proto::ICMP))
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if proto::has_ports(self.proto) {
            write!(f, "{}/{}", proto::name(self.proto), self.port)
        } else if proto::is_icmp(self.proto) {
            write!(
                f,
                "{}/{}/{}",
                proto::name(self.proto),
                self.icmp_type,
                self.icmp_code
            )
        } else {
            f.write_str(&proto::name(self.proto))
        }
    }
}

impl Traffic {
    /// Every packet of every protocol.
    pub fn any() -> Self {
        Traffic {
            proto: None,
            ports: PortSet::full(),
            icmp_type: None,
            icmp_code: None,
        }
    }
    /// Every packet of one protocol.
    pub fn proto(p: u8) -> Self {
        Traffic {
            proto: Some(p),
            ..Self::any()
        }
    }
    /// A protocol restricted to destination ports.
    pub fn ports(p: u8, ports: PortSet) -> Self {
        Traffic {
            proto: Some(p),
            ports,
            icmp_type: None,
            icmp_code: None,
        }
    }

    /// Parse one service token: `tcp/443`, `udp/53`, `tcp/8000-8099`, `tcp` (all ports),
    /// `icmp`, `icmp/8`, `icmp/8/0`, `icmpv6[/t[/c]]`, `esp`, `ah`, `gre`, `sctp[/ports]`,
    /// `ip/47` (any protocol by number) or `any`. Errors say what is wrong in words.
    pub fn parse(token: &str) -> Result<Traffic, String> {
        let t = token.trim().to_ascii_lowercase();
        let mut parts = t.splitn(2, '/');
        let head = parts.next().unwrap_or("");
        let rest = parts.next();
        let named = |p: u8| -> Result<Traffic, String> {
            match rest {
                None => Ok(Traffic::proto(p)),
                Some(_) => Err(format!(
                    "protocol `{head}` takes no ports or types (in `{token}`)"
                )),
            }
        };
        match head {
            "any" | "all" => named(0).map(|_| Traffic::any()),
            "tcp" | "udp" | "sctp" => {
                let p = match head {
                    "tcp" => proto::TCP,
                    "udp" => proto::UDP,
                    _ => proto::SCTP,
                };
                match rest {
                    None => Ok(Traffic::proto(p)),
                    Some(r) => {
                        let (a, b) = PortSet::parse_range(r).map_err(|e| e.to_string())?;
                        Ok(Traffic::ports(p, PortSet::range(a, b)))
                    }
                }
            }
            "icmp" | "icmpv6" => {
                let p = if head == "icmp" {
                    proto::ICMP
                } else {
                    proto::ICMPV6
                };
                let mut tr = Traffic::proto(p);
                if let Some(r) = rest {
                    let mut it = r.split('/');
                    let ty = it.next().unwrap_or("");
                    let num = |s: &str, what: &str| -> Result<u8, String> {
                        digits(s)
                            .and_then(|s| s.parse::<u8>().ok())
                            .ok_or_else(|| format!("{what} `{s}` in `{token}` must be 0-255"))
                    };
                    tr.icmp_type = Some(num(ty, "ICMP type")?);
                    if let Some(c) = it.next() {
                        tr.icmp_code = Some(num(c, "ICMP code")?);
                    }
                    if it.next().is_some() {
                        return Err(format!("`{token}`: write icmp, icmp/TYPE or icmp/TYPE/CODE"));
                    }
                }
                Ok(tr)
            }
            "esp" => named(proto::ESP),
            "ah" => named(proto::AH),
            "gre" => named(proto::GRE),
            "ip" => {
                let r = rest.ok_or_else(|| format!("`{token}`: write ip/NUMBER, e.g. ip/47"))?;
                let n: u8 = digits(r)
                    .and_then(|r| r.parse().ok())
                    .ok_or_else(|| format!("protocol number `{r}` in `{token}` must be 0-255"))?;
                Ok(Traffic::proto(n))
            }
            _ => Err(format!(
                "unknown protocol `{head}` in `{token}` (expected tcp, udp, sctp, icmp, icmpv6, esp, ah, gre, ip/N or any)"
            )),
        }
    }

    /// Does this set contain the packet?
    pub fn matches(&self, p: &Packet) -> bool {
        match self.proto {
            None => true,
            Some(x) if x != p.proto => false,
            Some(x) if proto::has_ports(x) => self.ports.contains(p.port),
            Some(x) if proto::is_icmp(x) => {
                self.icmp_type.is_none_or(|t| t == p.icmp_type)
                    && self.icmp_code.is_none_or(|c| c == p.icmp_code)
            }
            Some(_) => true,
        }
    }

    /// True for a token that selects ports of a ported protocol (not all of them).
    pub fn restricts_ports(&self) -> bool {
        self.proto.is_some_and(proto::has_ports) && !self.ports.is_full()
    }

    /// True for an ICMP token that selects a type (and maybe a code).
    pub fn restricts_icmp(&self) -> bool {
        self.proto.is_some_and(proto::is_icmp) && self.icmp_type.is_some()
    }
}

impl fmt::Display for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(p) = self.proto else {
            return f.write_str("any");
        };
        f.write_str(&proto::name(p))?;
        if proto::has_ports(p) && !self.ports.is_full() {
            write!(f, "/{}", self.ports.to_strings().join(","))?;
        }
        if proto::is_icmp(p) {
            if let Some(t) = self.icmp_type {
                write!(f, "/{t}")?;
                if let Some(c) = self.icmp_code {
                    write!(f, "/{c}")?;
                }
            }
        }
        Ok(())
    }
}

/// `Some(s)` when `s` is plain ASCII digits (integer parsing alone would take `+8`).
fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tokens() {
        assert_eq!(Traffic::parse("tcp/443").unwrap().to_string(), "tcp/443");
        assert_eq!(
            Traffic::parse("tcp/8000-8099").unwrap().to_string(),
            "tcp/8000-8099"
        );
        assert_eq!(Traffic::parse("icmp/8/0").unwrap().to_string(), "icmp/8/0");
        assert_eq!(Traffic::parse("ip/47").unwrap().to_string(), "gre");
        assert_eq!(Traffic::parse("any").unwrap(), Traffic::any());
        assert!(Traffic::parse("tcp/70000").is_err());
        assert!(Traffic::parse("tcp/90-80").is_err());
        assert!(Traffic::parse("bogus/1").is_err());
        assert!(Traffic::parse("esp/1").is_err());
        assert!(Traffic::parse("icmp/300").is_err());
        assert!(Traffic::parse("tcp/+443").is_err());
        assert!(Traffic::parse("icmp/+8").is_err());
        assert!(Traffic::parse("ip/+47").is_err());
    }

    #[test]
    fn icmp_type_does_not_match_other_types() {
        let t = Traffic::parse("icmp/8").unwrap();
        assert!(t.matches(&Packet::icmp(proto::ICMP, 8, 3)));
        assert!(!t.matches(&Packet::icmp(proto::ICMP, 0, 0)));
        assert!(!t.matches(&Packet::icmp(proto::ICMPV6, 8, 0)));
    }

    proptest! {
        #[test]
        fn port_tokens_match_exactly(a in any::<u16>(), b in any::<u16>(), probe in any::<u16>()) {
            let (lo, hi) = (a.min(b), a.max(b));
            let t = Traffic::parse(&format!("udp/{lo}-{hi}")).unwrap();
            prop_assert_eq!(t.matches(&Packet::ported(proto::UDP, probe)), probe >= lo && probe <= hi);
            prop_assert!(!t.matches(&Packet::ported(proto::TCP, probe)));
            prop_assert_eq!(Traffic::parse(&t.to_string()).unwrap(), t);
        }
    }
}
