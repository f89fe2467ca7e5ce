//! # intentwall-gcp: GCP VPC firewall rules
//!
//! One deployment on GCP is one project + VPC network (settings `project`, `network`,
//! `cidr`, `cidr6`). Native objects are firewall rules (`kind = "firewall"`, key
//! `fw:<name>`, no containers).
//!
//! - [`model`]: one rule in canonical form (defaults filled, spellings normalised);
//! - [`snapshot`]: `gcloud compute firewall-rules list --format=json` / `FirewallList` I/O;
//! - [`translate`]: intent -> managed rules (+ findings);
//! - [`lower`]: rules -> evaluation rules with GCP semantics (priority, deny wins ties,
//!   implied rules at 65535);
//! - [`names`]: RFC 1035 names of at most 63 characters.
//!
//! Ownership: a rule is managed when its name starts `iw-` and its description starts
//! `intentwall:`. Rules of another network are foreign.
#![deny(missing_docs)]

pub mod flowlog;
#[cfg(feature = "live")]
pub mod live;
pub mod lower;
pub mod model;
pub mod names;
pub mod permissions;
pub mod placement;
pub mod snapshot;
pub mod translate;

use intentwall_contract::{
    DeploymentIntent, EvalPolicy, InPlace, NativeObject, NativeState, Provider, ProviderKind,
    SnapshotError, SnapshotFormat, Translation,
};

/// The ownership marker every managed rule's description starts with (one for every cloud).
pub use intentwall_contract::MARKER;
/// The native object kind of a firewall rule.
pub const KIND: &str = "firewall";

/// The GCP provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct GcpProvider;

impl SnapshotFormat for GcpProvider {
    fn parse_snapshot(
        &self,
        text: &str,
        intent: &DeploymentIntent,
    ) -> Result<NativeState, SnapshotError> {
        snapshot::parse(text, intent)
    }

    fn render_snapshot(&self, state: &NativeState) -> String {
        snapshot::render(state)
    }
}

impl Provider for GcpProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gcp
    }

    fn translate(&self, intent: &DeploymentIntent, observed: &NativeState) -> Translation {
        translate::translate(intent, observed)
    }

    fn lower(&self, state: &NativeState, intent: &DeploymentIntent) -> EvalPolicy {
        lower::lower(state, intent)
    }

    /// A changed direction or network needs delete + insert; anything else is a PATCH.
    fn in_place(&self, before: &NativeObject, after: &NativeObject) -> InPlace {
        let (before, after) = (before.body.value(), after.body.value());
        let same = |k: &str| before.get(k) == after.get(k);
        if same("direction") && same("network") {
            InPlace::Update
        } else {
            InPlace::Replace
        }
    }
}
