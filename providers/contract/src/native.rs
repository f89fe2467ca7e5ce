//! Native state in a provider-neutral envelope, and what translation reports.
//!
//! The engine diffs, renders and applies native state without knowing any cloud's shapes: a
//! provider cuts its native documents into [`NativeObject`]s, each with a stable `key` and a
//! *canonical* `body` (normalised, so equal bodies mean "no change"), and puts them back
//! together when rendering. What a body contains is the provider's business.

use crate::intent::Action;
use crate::ProviderKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// A JSON document held as its compact text, shared on clone.
///
/// Why not a `serde_json::Value`: a target at estate scale holds hundreds of thousands of
/// rules, each in the observed state, the change set and the state after apply. As a `Value`
/// tree a small rule body is a dozen allocations and over a kilobyte; as text it is one
/// allocation of its own length, and the three copies share it. Equality is equality of the
/// text, so a provider builds a body with its keys always in the same order (each provider
/// has one function per object kind that writes its canonical body).
///
/// Serialised as the JSON it holds (a plan file shows the object, not a string), and read
/// back from any JSON value.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Body(Arc<str>);

impl Body {
    /// The compact text of `v`.
    pub fn new(v: &Value) -> Body {
        Body(Arc::from(v.to_string()))
    }

    /// The JSON value, parsed again from the text.
    pub fn value(&self) -> Value {
        // the text was written by `new` from a `Value`, so it always parses
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A copy with `edit` applied to the value (tests and in-place updates).
    pub fn with(&self, edit: impl FnOnce(&mut Value)) -> Body {
        let mut v = self.value();
        edit(&mut v);
        Body::new(&v)
    }
}

impl From<Value> for Body {
    fn from(v: Value) -> Body {
        Body::new(&v)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
        Value::deserialize(d).map(Body::from)
    }
}

/// One native object of a target: a container (security group, NSG) or a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeObject {
    /// Provider-defined kind, e.g. `security-group`, `sg-rule`, `nsg`, `nsg-rule`, `firewall`.
    pub kind: String,
    /// Identity within the target, stable across runs and independent of cloud-assigned ids.
    pub key: String,
    /// Key of the containing object, if any.
    pub parent: Option<String>,
    /// Containers hold rules; the engine creates them first and deletes them last.
    pub container: bool,
    /// Owned by intentwall, as each provider defines it (AWS: every rule of an SG tagged
    /// `managed-by=intentwall`; Azure: `iw-` names in our NSG; GCP: `iw-<deployment>-` names
    /// in our network). Owned objects follow the intent: a hand edit is drift planned back,
    /// one the intent does not produce is deleted.
    pub managed: bool,
    /// Outside intentwall's perimeter in this target (another NSG, another VPC network, an SG
    /// no workload of ours carries): kept as it is, never pruned, ignored by simulation.
    pub foreign: bool,
    /// The intent flow behind a managed rule, from its description marker; `None` when a
    /// managed rule has no marker (a hand-added rule in an owned container).
    pub flow: Option<String>,
    /// Canonical native JSON of this object alone; equal bodies mean no change.
    pub body: Body,
    /// The object exactly as read from a snapshot, so an untouched object is written back
    /// exactly as it was. `None` for objects made by translation.
    pub raw: Option<Body>,
    /// Fields the cloud assigned (an AWS GroupId), as read: never part of `body` (so the diff
    /// ignores them and an object the cloud created converges whatever id it got), kept when
    /// the object is updated in place, and written back by the snapshot renderer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned: Option<Body>,
    /// One human line: what the object does.
    pub summary: String,
}

/// The state of one target (one deployment on one cloud), observed or desired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeState {
    /// Containers and rules, in a stable order.
    pub objects: Vec<NativeObject>,
    /// Provider-defined note on the document's outer shape (e.g. a bare list or
    /// `{"value": [...]}`), so a rewrite keeps the shape the user captured.
    pub envelope: Option<String>,
}

impl NativeState {
    /// Find an object by key.
    pub fn get(&self, key: &str) -> Option<&NativeObject> {
        self.objects.iter().find(|o| o.key == key)
    }
}

/// How an object changes in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InPlace {
    /// The cloud can update it in place (Azure PUT, GCP PATCH, AWS description update).
    Update,
    /// It must be deleted and re-created (an immutable field changed).
    Replace,
}

/// The kinds of finding that block a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    /// Native rules give another verdict than the intent.
    Mismatch,
    /// An `expect` case failed.
    Expectation,
    /// A built-in guardrail is violated.
    Guardrail,
    /// The cloud cannot express a flow exactly.
    Inexpressible,
    /// A cloud quota or per-rule limit cannot be met.
    Limit,
    /// An unmanaged rule outranks ours and changes a verdict.
    Conflict,
    /// A rule whose match the model does not know could open traffic the intent denies.
    Unverifiable,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FindingKind::Mismatch => "mismatch",
            FindingKind::Expectation => "expectation",
            FindingKind::Guardrail => "guardrail",
            FindingKind::Inexpressible => "inexpressible",
            FindingKind::Limit => "limit",
            FindingKind::Conflict => "conflict",
            FindingKind::Unverifiable => "unverifiable",
        })
    }
}

/// A reason to block a plan, with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// Deployment it concerns.
    pub deployment: String,
    /// Cloud it concerns, if one.
    pub provider: Option<ProviderKind>,
    /// Intent flow it concerns, if one.
    pub flow: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.kind, self.deployment)?;
        if let Some(p) = self.provider {
            write!(f, "/{p}")?;
        }
        if let Some(fl) = &self.flow {
            write!(f, " flow `{fl}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What `translate` gives: the managed objects the target should have, and the findings for
/// everything it could not express exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    /// Desired managed objects (containers and rules), all with `managed = true`.
    pub objects: Vec<NativeObject>,
    /// Inexpressible and limit findings.
    pub findings: Vec<Finding>,
}

/// A snapshot document that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", .line.map(|l| format!(" at line {l}, column {}", .column.unwrap_or(0))).unwrap_or_default())]
pub struct SnapshotError {
    /// What is wrong.
    pub message: String,
    /// 1-based line in the document, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
}

impl SnapshotError {
    /// An error without a position.
    pub fn msg(message: impl Into<String>) -> Self {
        SnapshotError {
            message: message.into(),
            line: None,
            column: None,
        }
    }
    /// From a serde_json error, keeping its position.
    pub fn json(e: &serde_json::Error) -> Self {
        SnapshotError {
            message: format!("invalid JSON: {e}"),
            line: Some(e.line()),
            column: Some(e.column()),
        }
    }
}

/// A short word for a JSON value's type (`a list`, `an object`, ...), for loader messages
/// such as "`IpRanges` must be a list, found a string".
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Marker for an action in text (`allow`/`deny`), shared by renderers.
pub fn action_word(a: Action) -> &'static str {
    match a {
        Action::Allow => "allow",
        Action::Deny => "deny",
    }
}
