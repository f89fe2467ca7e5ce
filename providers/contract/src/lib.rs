//! # intentwall-contract
//!
//! The leaf crate every other intentwall crate stands on: neutral types, the [`Provider`]
//! trait and the evaluation model. No SDK, no runtime, no I/O, so the engine and each cloud
//! plugin can be built and tested on their own.
//!
//! - [`net`]: exact address and port sets (CIDR collapse and subtraction, port merging);
//! - [`traffic`]: service tokens as packet sets;
//! - [`intent`]: the resolved intent of one deployment on one cloud (translate's input);
//! - [`eval`]: the one evaluation algorithm all clouds lower into;
//! - [`native`]: native state in a neutral envelope, findings, translation results;
//! - [`oracle`]: the intent's reference semantics evaluated on the resolved intent;
//! - [`bdd`]: decision diagrams, the set representation the check proves with;
//! - [`check`]: the exhaustive comparison of lowered rules and oracle on every packet,
//!   symbolic and decomposed by group (its docs give the algorithm and its cost);
//! - `reference` (feature `testkit`): the enumerating checker it replaced, for differential
//!   tests only.
//! - [`flowlog`]: the neutral flow-log record, its parse error and the streaming reader each
//!   cloud's log parser plugs into;
//! - [`ident`]: the ownership marker and the name hash every cloud's plugin writes;
//! - [`quota`]: the cloud limits a placement may configure, with defaults and maxima.
//! - [`placement`]: the settings a cloud's placement holds, declared by its plugin.
#![deny(missing_docs)]

pub mod bdd;
pub mod check;
pub mod eval;
pub mod flowlog;
pub mod ident;
pub mod intent;
pub mod live;
pub mod native;
pub mod net;
pub mod oracle;
pub mod placement;
pub mod quota;
#[cfg(any(test, feature = "testkit"))]
pub mod reference;
pub mod snapshot;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod traffic;

use serde::{Deserialize, Serialize};
use std::fmt;

pub use eval::{
    Decision, Direction, EvalPolicy, EvalRule, Host, HostMatch, PolicyIndex, Probe, Verdict,
};
pub use ident::{fnv1a64, MARKER};
pub use intent::{Action, DeploymentIntent, Endpoint, FlowIntent, GroupIntent};
pub use native::{
    Body, Finding, FindingKind, InPlace, NativeObject, NativeState, SnapshotError, Translation,
};
pub use net::{AddrSet, NetError, PortSet};
pub use traffic::{Packet, Traffic};

/// The clouds intentwall knows. A closed set on purpose: adding a cloud is one variant, one
/// crate, one cargo feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// AWS Security Groups.
    Aws,
    /// Azure Network Security Groups with Application Security Groups.
    Azure,
    /// GCP VPC firewall rules.
    Gcp,
}

impl ProviderKind {
    /// All clouds, in report order.
    pub const ALL: [ProviderKind; 3] = [ProviderKind::Aws, ProviderKind::Azure, ProviderKind::Gcp];

    /// The lowercase name used in files and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Aws => "aws",
            ProviderKind::Azure => "azure",
            ProviderKind::Gcp => "gcp",
        }
    }

    /// Parse a lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cloud's state as its own CLI prints it: how the snapshot backend reads and writes a
/// target's file. Kept apart from [`Provider`], the cloud's semantics: a live backend observes
/// the same normalised objects through the cloud's API instead, and the semantics do not care
/// where they came from.
pub trait SnapshotFormat: Send + Sync {
    /// Read a snapshot document in the shape the cloud's own CLI prints. `intent` names the
    /// target (VPC, NSG, network) so objects outside it are marked `foreign`.
    fn parse_snapshot(
        &self,
        text: &str,
        intent: &DeploymentIntent,
    ) -> Result<NativeState, SnapshotError>;

    /// Write a state as a snapshot document in the CLI's shape (pretty JSON, trailing
    /// newline). Objects with `raw` are written from it, unchanged; what the cloud assigned
    /// (`assigned`) is written back.
    fn render_snapshot(&self, state: &NativeState) -> String;
}

/// What every cloud plugin provides. All methods are pure: no I/O, no clock, no randomness.
///
/// Two directions are kept apart on purpose: `translate` (intent -> native) and `lower`
/// (native -> evaluation rules with the cloud's real semantics). Simulation only ever
/// evaluates what `lower` gives, so a bug in one direction cannot hide in the other.
pub trait Provider: Send + Sync {
    /// Which cloud.
    fn kind(&self) -> ProviderKind;

    /// The managed native objects one deployment should have, plus findings for whatever the
    /// cloud cannot express exactly. `observed` is the current state of the target, used only
    /// for stable allocation (Azure priorities that never move or collide);
    /// translating against an empty state must give the same rules up to such allocations.
    fn translate(&self, intent: &DeploymentIntent, observed: &NativeState) -> Translation;

    /// Lower native objects (managed and unmanaged, foreign ones skipped) to evaluation rules
    /// with this cloud's semantics, implied and default rules included.
    fn lower(&self, state: &NativeState, intent: &DeploymentIntent) -> EvalPolicy;

    /// Traffic the cloud's platform allows that the reference semantics accepts for this
    /// cloud, as allow flows the oracle adds.
    fn platform_allowances(&self, intent: &DeploymentIntent) -> Vec<FlowIntent> {
        let _ = intent;
        Vec::new()
    }

    /// How `before` becomes `after` (same key, different body).
    fn in_place(&self, before: &NativeObject, after: &NativeObject) -> InPlace {
        let _ = (before, after);
        InPlace::Update
    }
}
