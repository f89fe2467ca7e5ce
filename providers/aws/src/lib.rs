//! # intentwall-aws
//!
//! AWS Security Groups for intentwall: one SG `iw-<group>` per leaf group, SG references
//! for group-to-group flows, CIDR rules for networks, deny flows compiled by CIDR
//! subtraction (AWS has no deny), and the reverse direction (`lower`) that evaluates any
//! snapshot with AWS's real semantics: a union of allows per interface, implicit deny.
//!
//! - [`model`]: canonical protocol / ports / peer / rule;
//! - [`snapshot`]: `aws ec2 describe-security-groups` documents in and out;
//! - [`translate`]: intent -> SGs and findings;
//! - [`lower`]: SGs -> evaluation rules.
//!
//! Pure: no SDK, no I/O, no clock, no randomness; except [`live`] (cargo feature `live`), the
//! SDK clients the engine's live backend drives.
#![deny(missing_docs)]

pub mod flowlog;
#[cfg(feature = "live")]
pub mod live;
pub mod lower;
pub mod model;
pub mod permissions;
pub mod placement;
pub mod snapshot;
pub mod translate;

use intentwall_contract::{
    DeploymentIntent, EvalPolicy, InPlace, NativeObject, NativeState, Provider, ProviderKind,
    SnapshotError, SnapshotFormat, Translation,
};

/// The AWS provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsProvider;

impl SnapshotFormat for AwsProvider {
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

impl Provider for AwsProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Aws
    }

    fn translate(&self, intent: &DeploymentIntent, observed: &NativeState) -> Translation {
        translate::translate(intent, observed)
    }

    fn lower(&self, state: &NativeState, intent: &DeploymentIntent) -> EvalPolicy {
        lower::lower(state, intent)
    }

    fn in_place(&self, before: &NativeObject, after: &NativeObject) -> InPlace {
        let kind = before.kind.as_str();
        let (before, after) = (before.body.value(), after.body.value());
        let differs = |k: &str| before.get(k) != after.get(k);
        match kind {
            // SG name, description and VPC are immutable; tags are not
            model::KIND_SG => {
                if differs("GroupName") || differs("Description") || differs("VpcId") {
                    InPlace::Replace
                } else {
                    InPlace::Update
                }
            }
            // ModifySecurityGroupRules could change more, but the key holds everything but
            // the description, so a same-key change is a description change
            model::KIND_RULE => {
                let strip = |v: &serde_json::Value| {
                    let mut v = v.clone();
                    if let Some(o) = v.as_object_mut() {
                        o.remove("Description");
                    }
                    v
                };
                if strip(&before) == strip(&after) {
                    InPlace::Update
                } else {
                    InPlace::Replace
                }
            }
            model::KIND_PL => {
                if differs("AddressFamily") {
                    InPlace::Replace
                } else {
                    InPlace::Update
                }
            }
            _ => InPlace::Update,
        }
    }
}
