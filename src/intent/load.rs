//! YAML files -> raw per-file documents with positions.
//!
//! Every node is walked by hand so every problem (wrong type, unknown key, bad CIDR, bad
//! date, ...) gets the `file:line:column` of the offending value. Nothing here knows about
//! other files: names are resolved in [`super::merge`].

use super::model::{Exception, Loc, Placement};
use crate::diag::Diagnostic;
use intentwall_contract::net::parse_cidr_lenient;
use intentwall_contract::quota;
use intentwall_contract::{Action, AddrSet, NetError, ProviderKind};
use ipnet::IpNet;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, Span};
use marked_yaml::{LoaderOptions, Node};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A value with the place it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sp<T> {
    pub v: T,
    pub loc: Loc,
}

/// One intent file as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceFile {
    /// Path relative to the intents directory.
    pub rel: PathBuf,
    /// `Some(dir name)` for `regions/<dir>/*.yaml`.
    pub region: Option<String>,
    /// Contents.
    pub text: String,
}

/// A deployment block.
#[derive(Debug, Clone)]
pub(crate) struct RawDeployment {
    pub name: Sp<String>,
    pub clouds: BTreeMap<ProviderKind, Placement>,
}

/// One item of a network list.
#[derive(Debug, Clone)]
pub(crate) enum NetItem {
    Cidr(IpNet),
    Name(Sp<String>),
}

/// `networks.<name>`.
#[derive(Debug, Clone)]
pub(crate) struct RawNetwork {
    pub name: Sp<String>,
    pub items: Vec<NetItem>,
}

/// `services.<name>`: tokens or names, resolved later.
#[derive(Debug, Clone)]
pub(crate) struct RawService {
    pub name: Sp<String>,
    pub items: Vec<Sp<String>>,
}

/// `addresses.<deployment>` of a group.
#[derive(Debug, Clone)]
pub(crate) struct RawAddresses {
    pub deployment: Sp<String>,
    pub all: Option<AddrSet>,
    pub by_cloud: BTreeMap<ProviderKind, Sp<AddrSet>>,
}

/// `groups.<name>`.
#[derive(Debug, Clone)]
pub(crate) struct RawGroup {
    pub name: Sp<String>,
    pub description: Option<String>,
    pub includes: Option<Sp<Vec<Sp<String>>>>,
    pub egress: Option<Loc>,
    pub sensitive: bool,
    pub addresses: Option<Sp<Vec<RawAddresses>>>,
    pub service_account: Option<Sp<String>>,
}

/// One `flows` item.
#[derive(Debug, Clone)]
pub(crate) struct RawFlow {
    pub name: Sp<String>,
    pub action: Action,
    pub from: Option<Sp<String>>,
    pub to: Option<Sp<String>>,
    pub services: Vec<Sp<String>>,
    pub deployments: Option<Vec<Sp<String>>>,
    pub guardrail: bool,
    pub exception: Option<Sp<Exception>>,
    /// Where the item starts.
    pub loc: Loc,
}

/// One `expect` item.
#[derive(Debug, Clone)]
pub(crate) struct RawExpect {
    pub from: Sp<String>,
    pub to: Sp<String>,
    pub service: Sp<String>,
    pub verdict: Action,
    pub loc: Loc,
}

/// Everything one file says.
#[derive(Debug, Clone)]
pub(crate) struct RawDoc {
    pub file: PathBuf,
    pub region: Option<String>,
    pub deployments: Vec<RawDeployment>,
    pub networks: Vec<RawNetwork>,
    pub services: Vec<RawService>,
    pub groups: Vec<RawGroup>,
    pub flows: Vec<RawFlow>,
    pub expects: Vec<RawExpect>,
    pub drops: Vec<Sp<String>>,
    /// True when the file could not be parsed at all (YAML syntax, not a mapping): its
    /// definitions are unknown, so cross-file checks would only report follow-on errors.
    pub unparsed: bool,
}

/// Read the intent files of `dir`: `*.yaml`/`*.yml` (any case) at the root and in
/// `regions/<deployment>/`, sorted by path.
///
/// Inputs are never skipped silently (an override's `drop:` or a global deny that is not read
/// would open traffic): every entry is either read, deliberately ignored, or an error naming
/// its path. Deliberately ignored are hidden entries (`.git`, `.gitkeep`, editor files) and
/// regular files that are not YAML (`README.md`). Errors: an entry that cannot be followed
/// or read (dangling or looping symlink, no permission), a directory named like an intent
/// file, an intent-named entry that is not a regular file, a subdirectory other than
/// `regions/` (its files would be ignored), a YAML file directly in `regions/`, a
/// subdirectory inside `regions/<deployment>/`, a region directory whose name is not a valid
/// deployment name.
pub(crate) fn read_dir(dir: &Path, diags: &mut Vec<Diagnostic>) -> Vec<SourceFile> {
    let mut out = Vec::new();
    let Some(entries) = list_dir(dir, diags) else {
        return out;
    };
    for (name, p) in entries {
        let rel = PathBuf::from(&name);
        match (kind_of_entry(&p), name.as_str()) {
            (Err(why), _) => diags.push(path_error(&p, why)),
            (Ok(Kind::Dir), "regions") => read_regions(&p, &mut out, diags),
            (Ok(_), "regions") => diags.push(path_error(
                &p,
                "`regions` must be a directory (`regions/<deployment>/*.yaml`)".into(),
            )),
            (Ok(kind), _) => read_entry(&p, rel, kind, None, &mut out, diags),
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// `regions/`: one directory per deployment.
fn read_regions(dir: &Path, out: &mut Vec<SourceFile>, diags: &mut Vec<Diagnostic>) {
    let Some(entries) = list_dir(dir, diags) else {
        return;
    };
    for (rname, r) in entries {
        let rel = Path::new("regions").join(&rname);
        match kind_of_entry(&r) {
            Err(why) => diags.push(path_error(&r, why)),
            Ok(Kind::Dir) => {
                if let Err(why) = super::names::check_name(&rname) {
                    diags.push(Diagnostic::error(
                        Loc {
                            file: rel,
                            line: 1,
                            column: 1,
                        },
                        format!(
                            "invalid deployment name {} (a region directory names a deployment): {why}",
                            super::names::quote(&rname)
                        ),
                    ));
                    continue;
                }
                read_region(&r, &rname, out, diags);
            }
            Ok(_) if is_yaml_name(&rname) => diags.push(Diagnostic::error(
                Loc {
                    file: rel,
                    line: 1,
                    column: 1,
                },
                "override files belong in `regions/<deployment>/`, not directly in `regions/`",
            )),
            Ok(_) => {} // not an intent file (README.md)
        }
    }
}

/// `regions/<rname>/`: its intent files; an empty one still names a deployment.
fn read_region(dir: &Path, rname: &str, out: &mut Vec<SourceFile>, diags: &mut Vec<Diagnostic>) {
    let Some(entries) = list_dir(dir, diags) else {
        return;
    };
    let rel_dir = Path::new("regions").join(rname);
    let mut any = false;
    for (name, f) in entries {
        any |= is_yaml_name(&name);
        match kind_of_entry(&f) {
            Err(why) => diags.push(path_error(&f, why)),
            Ok(kind) => read_entry(&f, rel_dir.join(&name), kind, Some(rname), out, diags),
        }
    }
    if !any {
        out.push(SourceFile {
            rel: rel_dir,
            region: Some(rname.to_string()),
            text: String::new(),
        });
    }
}

/// One entry at the root or in a region directory (where no subdirectory is read).
fn read_entry(
    p: &Path,
    rel: PathBuf,
    kind: Kind,
    region: Option<&str>,
    out: &mut Vec<SourceFile>,
    diags: &mut Vec<Diagnostic>,
) {
    let name = file_name(p);
    match kind {
        Kind::Dir if is_yaml_name(&name) => diags.push(path_error(
            p,
            "is a directory, not an intent file; rename or remove it".into(),
        )),
        Kind::Dir => diags.push(
            path_error(
                p,
                match region {
                    None => "subdirectories other than `regions/` are not read, so intent files in it would be ignored".into(),
                    Some(_) => "subdirectories of a region directory are not read, so intent files in it would be ignored".into(),
                },
            )
            .with_note(
                "move intent files to the root or to `regions/<deployment>/`, and anything else out of the intents directory",
            ),
        ),
        Kind::File if is_yaml_name(&name) => {
            if let Some(text) = read_text(p, &rel, diags) {
                out.push(SourceFile {
                    rel,
                    region: region.map(str::to_string),
                    text,
                });
            }
        }
        Kind::Other if is_yaml_name(&name) => diags.push(path_error(
            p,
            "is not a regular file, so it cannot be an intent file".into(),
        )),
        Kind::File | Kind::Other => {} // not an intent file (README.md, .gitkeep)
    }
}

/// What an entry is once symlinks are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Other,
}

/// Follow `p` (symlinks included); `Err(why)` when that fails: dangling or looping symlink,
/// no permission.
fn kind_of_entry(p: &Path) -> Result<Kind, String> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => Ok(Kind::File),
        Ok(m) if m.is_dir() => Ok(Kind::Dir),
        Ok(_) => Ok(Kind::Other),
        Err(e) => {
            let link = std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
            Err(match (link, e.kind()) {
                (true, std::io::ErrorKind::NotFound) => {
                    let target = std::fs::read_link(p)
                        .map(|t| t.display().to_string())
                        .unwrap_or_default();
                    format!("is a dangling symlink (its target `{target}` does not exist)")
                }
                (true, _) => format!("is a symlink that cannot be followed: {e}"),
                (false, _) => format!("cannot be read: {e}"),
            })
        }
    }
}

/// The entries of a directory (file name, path), hidden ones left out, sorted by name; an
/// error (the directory or one of its entries cannot be read) goes to `diags`.
fn list_dir(dir: &Path, diags: &mut Vec<Diagnostic>) -> Option<Vec<(String, PathBuf)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            diags.push(path_error(dir, format!("cannot read directory: {e}")));
            return None;
        }
    };
    let mut v = Vec::new();
    for e in rd {
        match e {
            Ok(e) => {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    v.push((name, e.path()));
                }
            }
            Err(e) => diags.push(path_error(dir, format!("cannot list directory: {e}"))),
        }
    }
    v.sort();
    Some(v)
}

/// `*.yaml` / `*.yml` in any case.
fn is_yaml_name(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    (l.ends_with(".yaml") || l.ends_with(".yml")) && !l.starts_with('.')
}

fn path_error(p: &Path, why: String) -> Diagnostic {
    Diagnostic::error(None, format!("{}: {why}", p.display()))
}

/// A file's text. Not UTF-8: an error at the line and column of the first invalid byte.
fn read_text(p: &Path, rel: &Path, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let bytes = match std::fs::read(p) {
        Ok(b) => b,
        Err(e) => {
            diags.push(path_error(p, format!("cannot be read: {e}")));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(t) => Some(t),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            // the prefix is valid UTF-8 by definition
            let before = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            diags.push(
                Diagnostic::error(
                    Loc {
                        file: rel.to_path_buf(),
                        line,
                        column,
                    },
                    format!("not UTF-8: invalid byte 0x{:02x}", bytes[at]),
                )
                .with_note("intent files are UTF-8 text; re-save the file as UTF-8"),
            );
            None
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// True for a source entry standing for an empty region directory (no file to parse).
pub(crate) fn is_placeholder(f: &SourceFile) -> bool {
    f.region.is_some() && f.rel.extension().is_none() && f.text.is_empty()
}

const TOP_KEYS: &[&str] = &[
    "version",
    "deployments",
    "networks",
    "services",
    "groups",
    "flows",
    "expect",
    "drop",
];

/// Parse one file into a raw document; problems go to `diags`.
pub(crate) fn parse_file(f: &SourceFile, diags: &mut Vec<Diagnostic>) -> RawDoc {
    let mut doc = RawDoc {
        file: f.rel.clone(),
        region: f.region.clone(),
        deployments: Vec::new(),
        networks: Vec::new(),
        services: Vec::new(),
        groups: Vec::new(),
        flows: Vec::new(),
        expects: Vec::new(),
        drops: Vec::new(),
        unparsed: false,
    };
    if is_placeholder(f) {
        return doc;
    }
    let mut cx = Cx {
        file: &f.rel,
        diags,
    };
    let opts = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    // a UTF-8 byte order mark (some Windows editors write one) is not part of the YAML
    let text = f.text.strip_prefix('\u{feff}').unwrap_or(&f.text);
    let node = match marked_yaml::parse_yaml_with_options(0, text, opts) {
        Ok(n) => n,
        Err(e) => {
            cx.load_error(e);
            doc.unparsed = true;
            return doc;
        }
    };
    let Some(top) = node.as_mapping() else {
        cx.err(cx.loc(node.span()), "an intent file must be a mapping");
        doc.unparsed = true;
        return doc;
    };
    cx.check_keys(top, TOP_KEYS, "top level");
    match top.get_node("version") {
        None => cx.err(
            Loc {
                file: f.rel.clone(),
                line: 1,
                column: 1,
            },
            "missing `version: 1` (every intent file must declare the language version)",
        ),
        Some(v) => match v.as_scalar().map(|s| (s.as_str(), s.may_coerce())) {
            Some(("1", true)) => {}
            Some(("1", false)) => cx.push(
                Diagnostic::error(
                    cx.loc(v.span()),
                    "`version` is the text \"1\"; it must be the number 1",
                )
                .with_note("write `version: 1`, without quotes"),
            ),
            Some((other, _)) => cx.push(
                Diagnostic::error(cx.loc(v.span()), format!("unsupported version `{other}`"))
                    .with_note("this intentwall reads `version: 1`"),
            ),
            None => cx.err(cx.loc(v.span()), "`version` must be the number 1"),
        },
    }
    let region = f.region.is_some();
    if let Some(n) = top.get_node("deployments") {
        if region {
            cx.err(
                cx.key_loc(top, "deployments"),
                "`deployments` can only be declared in a root intent file, not in a region override",
            );
        } else if let Some(m) = cx.map(n, "`deployments`") {
            for (k, v) in m.iter() {
                if let Some(d) = cx.deployment(k, v) {
                    doc.deployments.push(d);
                }
            }
        }
    }
    if let Some(n) = top.get_node("networks") {
        if let Some(m) = cx.map(n, "`networks`") {
            for (k, v) in m.iter() {
                let items = cx.network_items(v);
                doc.networks.push(RawNetwork {
                    name: cx.name(k, "network"),
                    items,
                });
            }
        }
    }
    if let Some(n) = top.get_node("services") {
        if let Some(m) = cx.map(n, "`services`") {
            for (k, v) in m.iter() {
                let items = cx.str_list(v, &format!("service `{}`", k.as_str()));
                doc.services.push(RawService {
                    name: cx.name(k, "service"),
                    items,
                });
            }
        }
    }
    if let Some(n) = top.get_node("groups") {
        if let Some(m) = cx.map(n, "`groups`") {
            for (k, v) in m.iter() {
                if let Some(g) = cx.group(k, v) {
                    doc.groups.push(g);
                }
            }
        }
    }
    if let Some(n) = top.get_node("flows") {
        if let Some(items) = cx.seq(n, "`flows`") {
            for it in items {
                if let Some(fl) = cx.flow(it) {
                    doc.flows.push(fl);
                }
            }
        }
    }
    if let Some(n) = top.get_node("expect") {
        if let Some(items) = cx.seq(n, "`expect`") {
            for it in items {
                if let Some(e) = cx.expect(it) {
                    doc.expects.push(e);
                }
            }
        }
    }
    if let Some(n) = top.get_node("drop") {
        if !region {
            cx.err(
                cx.key_loc(top, "drop"),
                "`drop` is only meaningful in a region override (`regions/<deployment>/*.yaml`); restrict a flow with `deployments: [...]` instead",
            );
        } else {
            doc.drops = cx.str_list(n, "`drop`");
        }
    }
    doc
}

struct Cx<'a> {
    file: &'a Path,
    diags: &'a mut Vec<Diagnostic>,
}

fn kind_of(n: &Node) -> &'static str {
    match n {
        Node::Scalar(_) => "a single value",
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
    }
}

impl Cx<'_> {
    fn loc(&self, span: &Span) -> Loc {
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
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }
    fn err(&mut self, loc: Loc, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(loc, msg));
    }
    fn load_error(&mut self, e: marked_yaml::LoadError) {
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
    fn name(&mut self, k: &MarkedScalarNode, kind: &str) -> Sp<String> {
        let name = self.key(k);
        self.check_name(&name, kind);
        name
    }

    /// Report `name` unless it follows the name rules ([`super::names`]).
    fn check_name(&mut self, name: &Sp<String>, kind: &str) {
        if let Err(why) = super::names::check_name(&name.v) {
            self.push(
                Diagnostic::error(
                    name.loc.clone(),
                    format!("invalid {kind} name {}: {why}", super::names::quote(&name.v)),
                )
                .with_note(
                    "names reach file paths and cloud resource names: letters, digits, `-`, `_`, `.`, starting with a letter or digit, at most 64 characters",
                ),
            );
        }
    }

    fn key(&self, k: &MarkedScalarNode) -> Sp<String> {
        Sp {
            v: k.as_str().to_string(),
            loc: self.loc(k.span()),
        }
    }
    fn key_loc(&self, m: &MarkedMappingNode, key: &str) -> Loc {
        m.keys()
            .find(|k| k.as_str() == key)
            .map(|k| self.loc(k.span()))
            .unwrap_or_else(|| self.loc(m.span()))
    }

    fn check_keys(&mut self, m: &MarkedMappingNode, allowed: &[&str], what: &str) {
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

    fn map<'n>(&mut self, n: &'n Node, what: &str) -> Option<&'n MarkedMappingNode> {
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

    fn seq<'n>(&mut self, n: &'n Node, what: &str) -> Option<Vec<&'n Node>> {
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

    fn text(&mut self, n: &Node, what: &str) -> Option<Sp<String>> {
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
    fn str_list(&mut self, n: &Node, what: &str) -> Vec<Sp<String>> {
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

    fn boolean(&mut self, n: &Node, what: &str) -> Option<bool> {
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

    fn action(&mut self, n: &Node, what: &str) -> Option<Action> {
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
    fn cidr(&mut self, t: &Sp<String>) -> Option<IpNet> {
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

    fn cidr_set(&mut self, n: &Node, what: &str) -> Option<AddrSet> {
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

    fn network_items(&mut self, n: &Node) -> Vec<NetItem> {
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

    fn deployment(&mut self, k: &MarkedScalarNode, v: &Node) -> Option<RawDeployment> {
        let name = self.name(k, "deployment");
        let what = format!("deployment `{}`", name.v);
        let m = self.map(v, &what)?;
        self.check_keys(m, &["aws", "azure", "gcp"], &what);
        let mut clouds = BTreeMap::new();
        for (ck, cv) in m.iter() {
            let Some(kind) = ProviderKind::parse(ck.as_str()) else {
                continue;
            };
            if let Some(p) = self.placement(kind, &name.v, cv) {
                clouds.insert(kind, p);
            }
        }
        if m.is_empty() {
            self.err(
                name.loc.clone(),
                format!("{what} has no placement (give at least one of aws, azure, gcp)"),
            );
        }
        Some(RawDeployment { name, clouds })
    }

    fn placement(&mut self, kind: ProviderKind, dep: &str, n: &Node) -> Option<Placement> {
        let (required, optional, v4, v6): (&[&str], &[&str], &str, &str) = match kind {
            ProviderKind::Aws => (
                &["account", "region", "vpc", "cidr"],
                &["cidr6"],
                "cidr",
                "cidr6",
            ),
            ProviderKind::Azure => (
                &[
                    "subscription",
                    "resource_group",
                    "location",
                    "nsg",
                    "vnet_cidr",
                ],
                &["vnet_cidr6", "load_balancer_probes"],
                "vnet_cidr",
                "vnet_cidr6",
            ),
            ProviderKind::Gcp => (&["project", "network", "cidr"], &["cidr6"], "cidr", "cidr6"),
        };
        let what = format!("the {kind} placement of deployment `{dep}`");
        let m = self.map(n, &what)?;
        // the address books a placement may declare, so rules naming them are known
        let books: &[&str] = match kind {
            ProviderKind::Aws => &["prefix_lists"],
            ProviderKind::Azure => &["service_tags"],
            ProviderKind::Gcp => &[],
        };
        let allowed: Vec<&str> = required
            .iter()
            .chain(optional)
            .chain(&["quotas"])
            .chain(books)
            .copied()
            .collect();
        self.check_keys(m, &allowed, &what);
        let loc = self.loc(n.span());
        let mut ok = true;
        for r in required {
            if m.get_node(r).is_none() {
                self.err(loc.clone(), format!("{what} is missing `{r}`"));
                ok = false;
            }
        }
        let mut settings = BTreeMap::new();
        let mut space = AddrSet::empty();
        for (k, v) in m.iter() {
            if !allowed.contains(&k.as_str()) {
                continue;
            }
            if k.as_str() == "quotas" {
                // a bad quota is reported where it is written; the placement itself stays,
                // so no follow-on "has no placement" errors bury it
                self.quotas(kind, v, &what, &mut settings);
                continue;
            }
            if books.contains(&k.as_str()) {
                self.address_book(k.as_str(), v, &what, &mut settings);
                continue;
            }
            let Some(t) = self.text(v, &format!("`{}` of {what}", k.as_str())) else {
                ok = false;
                continue;
            };
            if k.as_str() == v4 || k.as_str() == v6 {
                match self.cidr(&t) {
                    Some(net) => {
                        let want_v6 = k.as_str() == v6;
                        if matches!(net, IpNet::V6(_)) != want_v6 {
                            self.err(
                                t.loc.clone(),
                                format!(
                                    "`{}` must be an {} range, found `{}`",
                                    k.as_str(),
                                    if want_v6 { "IPv6" } else { "IPv4" },
                                    t.v
                                ),
                            );
                            ok = false;
                        }
                        space = space.union(&AddrSet::from_net(net));
                    }
                    None => ok = false,
                }
            }
            if k.as_str() == "load_balancer_probes" && !matches!(t.v.as_str(), "allow" | "deny") {
                self.err(
                    t.loc.clone(),
                    format!(
                        "`load_balancer_probes` must be `allow` or `deny`, found `{}`",
                        t.v
                    ),
                );
                ok = false;
            }
            if let Err(why) = super::names::check_setting(kind, k.as_str(), &t.v) {
                let q = super::names::quote(&t.v);
                self.err(
                    t.loc.clone(),
                    format!("`{}` of {what} is {q}: {why}", k.as_str()),
                );
                ok = false;
            }
            settings.insert(k.as_str().to_string(), t.v);
        }
        ok.then_some(Placement {
            settings,
            space,
            loc,
        })
    }

    /// `service_tags:` (Azure) or `prefix_lists:` (AWS) of a placement: what a named address
    /// book of the cloud holds, so rules naming it are judged exactly instead of being
    /// unverifiable. Each entry goes to `settings` as `<book>.<name>` = comma-joined CIDRs.
    fn address_book(
        &mut self,
        book: &str,
        n: &Node,
        what: &str,
        settings: &mut BTreeMap<String, String>,
    ) {
        let what = format!("`{book}` of {what}");
        let Some(m) = self.map(n, &what) else {
            return;
        };
        for (k, v) in m.iter() {
            let name = k.as_str();
            let valid = if book == "prefix_lists" {
                name.strip_prefix("pl-").is_some_and(|h| {
                    (8..=17).contains(&h.len())
                        && h.bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                })
            } else {
                // Azure service tags: AzureMonitor, Storage.EastUS, AzureCloud.westeurope
                name.len() <= 80
                    && name.starts_with(|c: char| c.is_ascii_alphabetic())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
            };
            if !valid {
                let loc = self.loc(k.span());
                let q = super::names::quote(name);
                self.err(
                    loc,
                    if book == "prefix_lists" {
                        format!("{what}: {q} is not a prefix list id (pl- and 8 or 17 hex digits)")
                    } else {
                        format!("{what}: {q} is not a service tag name (letters, digits and `.`)")
                    },
                );
                continue;
            }
            let entry = format!("`{name}` in {what}");
            if let Some(set) = self.cidr_set(v, &entry) {
                settings.insert(format!("{book}.{name}"), set.to_strings().join(","));
            }
        }
    }

    /// `quotas:` of a placement: known keys of this cloud, each a whole number from 1 to the
    /// cloud's maximum, written unquoted. Valid values go to `settings` as `quotas.<key>`.
    fn quotas(
        &mut self,
        kind: ProviderKind,
        n: &Node,
        what: &str,
        settings: &mut BTreeMap<String, String>,
    ) {
        let what = format!("`quotas` of {what}");
        // `quotas:` with nothing is no quota; anything else but a mapping is reported by `map`
        let Some(m) = self.map(n, &what) else {
            return;
        };
        let keys: Vec<&str> = quota::specs(kind).iter().map(|s| s.key).collect();
        self.check_keys(m, &keys, &what);
        for (k, v) in m.iter() {
            let Some(spec) = quota::spec(kind, k.as_str()) else {
                continue;
            };
            let loc = self.loc(v.span());
            match v.as_scalar() {
                Some(s) if s.may_coerce() => match quota::validate(spec, s.as_str()) {
                    Ok(n) => {
                        settings.insert(format!("{}{}", quota::SETTING_PREFIX, spec.key), n.to_string());
                    }
                    Err(e) => self.err(loc, e),
                },
                Some(s) => self.err(
                    loc,
                    format!(
                        "quota `{}` must be a whole number, found the text \"{}\" (write it without quotes)",
                        spec.key,
                        s.as_str()
                    ),
                ),
                None => self.err(
                    loc,
                    format!("quota `{}` must be a whole number, found {}", spec.key, kind_of(v)),
                ),
            }
        }
    }

    fn group(&mut self, k: &MarkedScalarNode, v: &Node) -> Option<RawGroup> {
        let name = self.name(k, "group");
        let what = format!("group `{}`", name.v);
        let mut g = RawGroup {
            name,
            description: None,
            includes: None,
            egress: None,
            sensitive: false,
            addresses: None,
            service_account: None,
        };
        if let Node::Scalar(s) = v {
            if s.as_str().is_empty() {
                return Some(g); // `web:` with nothing: a plain leaf group
            }
        }
        let m = self.map(v, &what)?;
        self.check_keys(
            m,
            &[
                "description",
                "includes",
                "egress",
                "sensitive",
                "addresses",
                "gcp",
            ],
            &what,
        );
        for (key, val) in m.iter() {
            match key.as_str() {
                "description" => {
                    g.description = self
                        .text(val, &format!("`description` of {what}"))
                        .map(|t| t.v)
                }
                "includes" => {
                    let items = self.str_list(val, &format!("`includes` of {what}"));
                    g.includes = Some(Sp {
                        v: items,
                        loc: self.loc(key.span()),
                    });
                }
                "egress" => {
                    if let Some(t) = self.text(val, &format!("`egress` of {what}")) {
                        if t.v == "restricted" {
                            g.egress = Some(t.loc);
                        } else {
                            self.push(
                                Diagnostic::error(
                                    t.loc,
                                    format!(
                                        "`egress` of {what} must be `restricted`, found `{}`",
                                        t.v
                                    ),
                                )
                                .with_note("leave `egress` out for the default (egress allowed)"),
                            );
                        }
                    }
                }
                "sensitive" => {
                    g.sensitive = self
                        .boolean(val, &format!("`sensitive` of {what}"))
                        .unwrap_or(false)
                }
                "addresses" => {
                    g.addresses = self.addresses(val, &what).map(|v| Sp {
                        v,
                        loc: self.loc(key.span()),
                    })
                }
                "gcp" => {
                    let w = format!("`gcp` of {what}");
                    if let Some(gm) = self.map(val, &w) {
                        self.check_keys(gm, &["service_account"], &w);
                        if let Some(sa) = gm.get_node("service_account") {
                            g.service_account =
                                self.text(sa, &format!("`service_account` of {what}"));
                            if let Some(t) = &g.service_account {
                                if let Err(why) = super::names::check_service_account(&t.v) {
                                    let q = super::names::quote(&t.v);
                                    self.err(
                                        t.loc.clone(),
                                        format!("`service_account` of {what} is {q}: {why}"),
                                    );
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Some(g)
    }

    fn addresses(&mut self, n: &Node, what: &str) -> Option<Vec<RawAddresses>> {
        let w = format!("`addresses` of {what}");
        let m = self.map(n, &w)?;
        let mut out = Vec::new();
        for (dk, dv) in m.iter() {
            let deployment = self.key(dk);
            let mut a = RawAddresses {
                deployment,
                all: None,
                by_cloud: BTreeMap::new(),
            };
            match dv {
                Node::Mapping(cm) => {
                    let cw = format!("`addresses.{}` of {what}", dk.as_str());
                    self.check_keys(cm, &["aws", "azure", "gcp"], &cw);
                    for (ck, cv) in cm.iter() {
                        if let Some(kind) = ProviderKind::parse(ck.as_str()) {
                            if let Some(s) = self.cidr_set(cv, &cw) {
                                a.by_cloud.insert(
                                    kind,
                                    Sp {
                                        v: s,
                                        loc: self.loc(ck.span()),
                                    },
                                );
                            }
                        }
                    }
                }
                _ => a.all = self.cidr_set(dv, &w),
            }
            out.push(a);
        }
        Some(out)
    }

    fn flow(&mut self, n: &Node) -> Option<RawFlow> {
        let m = self.map(n, "a flow")?;
        let loc = self.loc(n.span());
        self.check_keys(
            m,
            &[
                "name",
                "description",
                "action",
                "from",
                "to",
                "services",
                "deployments",
                "guardrail",
                "exception",
            ],
            "a flow",
        );
        let Some(name) = m.get_node("name").and_then(|v| self.text(v, "flow `name`")) else {
            if m.get_node("name").is_none() {
                self.err(loc, "a flow needs a `name`");
            }
            return None;
        };
        self.check_name(&name, "flow");
        let what = format!("flow `{}`", name.v);
        let mut f = RawFlow {
            name,
            action: Action::Allow,
            from: None,
            to: None,
            services: Vec::new(),
            deployments: None,
            guardrail: false,
            exception: None,
            loc: loc.clone(),
        };
        for (key, val) in m.iter() {
            match key.as_str() {
                "description" => {
                    self.text(val, &format!("`description` of {what}"));
                }
                "action" => {
                    f.action = self
                        .action(val, &format!("`action` of {what}"))
                        .unwrap_or(Action::Allow)
                }
                "from" => f.from = self.text(val, &format!("`from` of {what}")),
                "to" => f.to = self.text(val, &format!("`to` of {what}")),
                "services" => f.services = self.str_list(val, &format!("`services` of {what}")),
                "deployments" => {
                    f.deployments = Some(self.str_list(val, &format!("`deployments` of {what}")))
                }
                "guardrail" => {
                    f.guardrail = self
                        .boolean(val, &format!("`guardrail` of {what}"))
                        .unwrap_or(false)
                }
                "exception" => f.exception = self.exception(val, &what),
                _ => {}
            }
        }
        for (k, present) in [
            ("from", m.get_node("from").is_some()),
            ("to", m.get_node("to").is_some()),
            ("services", m.get_node("services").is_some()),
        ] {
            if !present {
                self.err(f.name.loc.clone(), format!("{what} needs `{k}`"));
            }
        }
        if m.get_node("services").is_some() && f.services.is_empty() {
            self.err(
                self.key_loc(m, "services"),
                format!("{what} has an empty `services` list (write `any` for all traffic)"),
            );
        }
        Some(f)
    }

    fn exception(&mut self, n: &Node, what: &str) -> Option<Sp<Exception>> {
        let w = format!("the exception of {what}");
        let m = self.map(n, &w)?;
        self.check_keys(m, &["reason", "expires"], &w);
        let loc = self.loc(n.span());
        let reason = match m.get_node("reason") {
            Some(r) => self.text(r, &format!("`reason` of {w}")).map(|t| t.v),
            None => {
                self.err(loc.clone(), format!("{w} needs a `reason`"));
                None
            }
        };
        let expires = match m.get_node("expires") {
            Some(e) => {
                let t = self.text(e, &format!("`expires` of {w}"))?;
                let fmt = time::macros::format_description!("[year]-[month]-[day]");
                match time::Date::parse(&t.v, &fmt) {
                    Ok(d) => Some(Sp { v: d, loc: t.loc }),
                    Err(_) => {
                        self.err(
                            t.loc,
                            format!(
                                "`expires` of {w} must be a date YYYY-MM-DD, found `{}`",
                                t.v
                            ),
                        );
                        None
                    }
                }
            }
            None => {
                self.err(
                    loc.clone(),
                    format!(
                        "{w} needs an `expires` date (YYYY-MM-DD); exceptions cannot be permanent"
                    ),
                );
                None
            }
        };
        let (reason, expires) = (reason?, expires?);
        Some(Sp {
            v: Exception {
                reason,
                expires: expires.v,
            },
            loc: expires.loc,
        })
    }

    fn expect(&mut self, n: &Node) -> Option<RawExpect> {
        let m = self.map(n, "an expectation")?;
        let loc = self.loc(n.span());
        self.check_keys(
            m,
            &["from", "to", "service", "verdict", "description"],
            "an expectation",
        );
        let mut get = |k: &str| -> Option<Sp<String>> {
            match m.get_node(k) {
                Some(v) => self.text(v, &format!("`{k}` of an expectation")),
                None => {
                    self.err(loc.clone(), format!("an expectation needs `{k}`"));
                    None
                }
            }
        };
        let from = get("from");
        let to = get("to");
        let service = get("service");
        let verdict = match m.get_node("verdict") {
            Some(v) => self.action(v, "`verdict` of an expectation"),
            None => {
                self.err(
                    loc.clone(),
                    "an expectation needs `verdict` (allow or deny)",
                );
                None
            }
        };
        if let Some(d) = m.get_node("description") {
            self.text(d, "`description` of an expectation");
        }
        Some(RawExpect {
            from: from?,
            to: to?,
            service: service?,
            verdict: verdict?,
            loc,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (RawDoc, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let f = SourceFile {
            rel: PathBuf::from("t.yaml"),
            region: None,
            text: text.into(),
        };
        (parse_file(&f, &mut d), d)
    }

    #[test]
    fn positions_are_one_based() {
        let (_, d) = parse("version: 1\ngroups:\n  web: { sensitive: maybe }\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].to_string(), "error: t.yaml:3:21: `sensitive` of group `web` must be `true` or `false`, found `maybe`");
    }

    #[test]
    fn quoted_true_is_not_a_boolean() {
        let (_, d) = parse("version: 1\ngroups:\n  web: { sensitive: \"true\" }\n");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("serivces", ["services", "from"]),
            Some("services")
        );
        assert_eq!(did_you_mean("zzz", ["services", "from"]), None);
    }

    #[test]
    fn syntax_error_has_position() {
        let (_, d) = parse("version: 1\nflows:\n  - { name: a, from: [x\n");
        assert_eq!(d.len(), 1);
        assert!(d[0].to_string().starts_with("error: t.yaml:"), "{}", d[0]);
    }
}
