//! Walking YAML nodes with positions: the parse context, the typed readers every definition
//! is built from (mappings, lists, texts, booleans, CIDRs), and the spelling help shared with
//! the merge.

use super::{NetItem, Sp};
use crate::diag::Diagnostic;
use crate::source::Loc;
use intentwall_contract::net::parse_cidr_lenient;
use intentwall_contract::{Action, AddrSet, NetError};
use ipnet::IpNet;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, Span};
use marked_yaml::Node;
use std::path::Path;

/// The parse context of one file: where positions point, and where problems go.
pub(super) struct Cx<'a> {
    pub(super) file: &'a Path,
    pub(super) diags: &'a mut Vec<Diagnostic>,
}

pub(super) fn kind_of(n: &Node) -> &'static str {
    match n {
        Node::Scalar(_) => "a single value",
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
    }
}

impl Cx<'_> {
    pub(super) fn loc(&self, span: &Span) -> Loc {
        let (line, column) = span
            .start()
            .map(|m| (m.line().max(1), m.column().max(1)))
            .unwrap_or((1, 1));
        Loc {
            file: self.file.to_path_buf(),
            line,
            column,
        }
    }
    pub(super) fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }
    pub(super) fn err(&mut self, loc: Loc, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(loc, msg));
    }
    pub(super) fn load_error(&mut self, e: marked_yaml::LoadError) {
        use marked_yaml::LoadError as E;
        let at = |m: &marked_yaml::Marker| Loc {
            file: self.file.to_path_buf(),
            line: m.line().max(1),
            column: m.column().max(1),
        };
        let d = match &e {
            E::ScanError(m, se) => {
                let text = se.to_string();
                // yaml-rust appends " at line L column C"; we print our own position
                let text = text
                    .split(" at byte ")
                    .next()
                    .unwrap_or(&text)
                    .split(" at line ")
                    .next()
                    .unwrap_or(&text)
                    .to_string();
                Diagnostic::error(at(m), format!("YAML syntax error: {text}"))
            }
            E::TopLevelMustBeMapping(m) | E::TopLevelMustBeSequence(m) => Diagnostic::error(
                at(m),
                "an intent file must be a mapping (`version: 1`, `flows: ...`)",
            ),
            E::UnexpectedAnchor(m) => Diagnostic::error(
                at(m),
                "YAML anchors and aliases are not supported in intent files",
            ),
            E::MappingKeyMustBeScalar(m) => {
                Diagnostic::error(at(m), "mapping keys must be plain names")
            }
            E::UnexpectedTag(m) => Diagnostic::error(
                at(m),
                "YAML tags (`!tag`) are not supported in intent files",
            ),
            E::DuplicateKey(inner) => {
                let first = inner
                    .prev_key
                    .span()
                    .start()
                    .map(|m| at(m).to_string())
                    .unwrap_or_default();
                let loc = inner
                    .key
                    .span()
                    .start()
                    .map(at)
                    .unwrap_or_else(|| at(&marked_yaml::Marker::new(0, 0, 1, 1)));
                Diagnostic::error(
                    loc,
                    format!("duplicate key `{}` in one mapping", inner.key.as_str()),
                )
                .with_note(format!("first written at {first}"))
            }
        };
        self.push(d);
    }

    /// A definition's name (a mapping key), checked against the name rules.
    pub(super) fn name(&mut self, k: &MarkedScalarNode, kind: &str) -> Sp<String> {
        let name = self.key(k);
        self.check_name(&name, kind);
        name
    }

    /// Report `name` unless it follows the name rules ([`super::names`]).
    pub(super) fn check_name(&mut self, name: &Sp<String>, kind: &str) {
        if let Err(why) = crate::intent::names::check_name(&name.v) {
            self.push(
                Diagnostic::error(
                    name.loc.clone(),
                    format!("invalid {kind} name {}: {why}", crate::intent::names::quote(&name.v)),
                )
                .with_note(
                    "names reach file paths and cloud resource names: letters, digits, `-`, `_`, `.`, starting with a letter or digit, at most 64 characters",
                ),
            );
        }
    }

    pub(super) fn key(&self, k: &MarkedScalarNode) -> Sp<String> {
        Sp {
            v: k.as_str().to_string(),
            loc: self.loc(k.span()),
        }
    }
    pub(super) fn key_loc(&self, m: &MarkedMappingNode, key: &str) -> Loc {
        m.keys()
            .find(|k| k.as_str() == key)
            .map(|k| self.loc(k.span()))
            .unwrap_or_else(|| self.loc(m.span()))
    }

    pub(super) fn check_keys(&mut self, m: &MarkedMappingNode, allowed: &[&str], what: &str) {
        for k in m.keys() {
            if !allowed.contains(&k.as_str()) {
                let mut d = Diagnostic::error(
                    self.loc(k.span()),
                    format!("unknown key `{}` in {what}", k.as_str()),
                );
                if let Some(s) = did_you_mean(k.as_str(), allowed.iter().copied()) {
                    d = d.with_note(format!("did you mean `{s}`?"));
                }
                d = d.with_note(format!("expected one of: {}", allowed.join(", ")));
                self.push(d);
            }
        }
    }

    pub(super) fn map<'n>(&mut self, n: &'n Node, what: &str) -> Option<&'n MarkedMappingNode> {
        match n {
            Node::Mapping(m) => Some(m),
            Node::Scalar(s) if s.as_str().is_empty() && s.may_coerce() => None,
            _ => {
                self.err(
                    self.loc(n.span()),
                    format!("{what} must be a mapping, found {}", kind_of(n)),
                );
                None
            }
        }
    }

    pub(super) fn seq<'n>(&mut self, n: &'n Node, what: &str) -> Option<Vec<&'n Node>> {
        match n {
            Node::Sequence(s) => Some(s.iter().collect()),
            Node::Scalar(s) if s.as_str().is_empty() && s.may_coerce() => Some(Vec::new()),
            _ => {
                self.err(
                    self.loc(n.span()),
                    format!("{what} must be a list, found {}", kind_of(n)),
                );
                None
            }
        }
    }

    pub(super) fn text(&mut self, n: &Node, what: &str) -> Option<Sp<String>> {
        match n {
            Node::Scalar(s) if s.as_str().is_empty() && s.may_coerce() => {
                self.err(self.loc(n.span()), format!("{what} needs a value"));
                None
            }
            Node::Scalar(s) => Some(Sp {
                v: s.as_str().to_string(),
                loc: self.loc(n.span()),
            }),
            _ => {
                self.err(
                    self.loc(n.span()),
                    format!("{what} must be a single value, found {}", kind_of(n)),
                );
                None
            }
        }
    }

    /// A list of single values; a single value stands for a list of one.
    pub(super) fn str_list(&mut self, n: &Node, what: &str) -> Vec<Sp<String>> {
        match n {
            Node::Scalar(s) if s.as_str().is_empty() && s.may_coerce() => Vec::new(),
            Node::Scalar(_) => self.text(n, what).into_iter().collect(),
            Node::Sequence(items) => items
                .iter()
                .filter_map(|i| self.text(i, &format!("an item of {what}")))
                .collect(),
            Node::Mapping(_) => {
                self.err(
                    self.loc(n.span()),
                    format!("{what} must be a list, found a mapping"),
                );
                Vec::new()
            }
        }
    }

    pub(super) fn boolean(&mut self, n: &Node, what: &str) -> Option<bool> {
        match n.as_scalar() {
            Some(s) if s.may_coerce() && s.as_str() == "true" => Some(true),
            Some(s) if s.may_coerce() && s.as_str() == "false" => Some(false),
            _ => {
                let found = match n.as_scalar() {
                    Some(s) => format!("`{}`", s.as_str()),
                    None => kind_of(n).to_string(),
                };
                self.err(
                    self.loc(n.span()),
                    format!("{what} must be `true` or `false`, found {found}"),
                );
                None
            }
        }
    }

    pub(super) fn action(&mut self, n: &Node, what: &str) -> Option<Action> {
        let t = self.text(n, what)?;
        match t.v.as_str() {
            "allow" => Some(Action::Allow),
            "deny" => Some(Action::Deny),
            other => {
                self.err(
                    t.loc,
                    format!("{what} must be `allow` or `deny`, found `{other}`"),
                );
                None
            }
        }
    }

    /// Parse a CIDR strictly, reporting at `loc`.
    pub(super) fn cidr(&mut self, t: &Sp<String>) -> Option<IpNet> {
        match AddrSet::parse_cidr_strict(&t.v) {
            Ok(n) => {
                if let Some(v4) = ipv4_mapped(&n) {
                    // clouds match IPv4 packets against IPv4 ranges only: `::ffff:a.b.c.d/n`
                    // would silently not cover the IPv4 addresses it spells
                    self.push(
                        Diagnostic::error(
                            t.loc.clone(),
                            format!("`{}` is an IPv4-mapped IPv6 prefix; it does not match IPv4 traffic", t.v),
                        )
                        .with_note(format!("write the IPv4 form `{v4}`")),
                    );
                    return None;
                }
                Some(n)
            }
            Err(NetError::HostBits { text, network }) => {
                self.push(
                    Diagnostic::error(
                        t.loc.clone(),
                        format!("`{text}` has host bits set; the network is `{network}`"),
                    )
                    .with_note(format!(
                        "write `{network}` for the whole network, or `{}` for the one address",
                        host_form(&text)
                    )),
                );
                None
            }
            Err(_) => {
                self.err(t.loc.clone(), format!("invalid CIDR `{}`", t.v));
                None
            }
        }
    }

    pub(super) fn cidr_set(&mut self, n: &Node, what: &str) -> Option<AddrSet> {
        let items = self.str_list(n, what);
        let mut nets = Vec::new();
        let mut ok = true;
        for t in &items {
            match self.cidr(t) {
                Some(n) => nets.push(n),
                None => ok = false,
            }
        }
        ok.then(|| AddrSet::from_nets(&nets))
    }

    pub(super) fn network_items(&mut self, n: &Node) -> Vec<NetItem> {
        let mut out = Vec::new();
        for t in self.str_list(n, "a network") {
            if looks_like_address(&t.v) {
                if let Some(net) = self.cidr(&t) {
                    out.push(NetItem::Cidr(net));
                }
            } else {
                out.push(NetItem::Name(t));
            }
        }
        out
    }
}

/// True for text that is meant as an address rather than a name: starts with a digit, or
/// holds `:` or `/`.
pub(crate) fn looks_like_address(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_digit()) || t.contains(':') || t.contains('/')
}

/// The IPv4 network an IPv4-mapped IPv6 prefix (`::ffff:203.0.113.0/120`) spells, if `n` is
/// one (a prefix inside `::ffff:0:0/96`).
fn ipv4_mapped(n: &IpNet) -> Option<ipnet::Ipv4Net> {
    let IpNet::V6(n) = n else { return None };
    let v4 = n.network().to_ipv4_mapped()?;
    let len = n.prefix_len().checked_sub(96)?;
    ipnet::Ipv4Net::new(v4, len).ok()
}

fn host_form(text: &str) -> String {
    match parse_cidr_lenient(text) {
        Ok(IpNet::V4(n)) => format!("{}/32", n.addr()),
        Ok(IpNet::V6(n)) => format!("{}/128", n.addr()),
        Err(_) => text.to_string(),
    }
}

/// The closest candidate within edit distance 2 (or a third of the word), if any.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.len() / 3).clamp(1, 2);
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
