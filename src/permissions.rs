//! `intentwall permissions <cloud>`: the least-privilege policy the job needs on one
//! cloud, scoped to the placements of the intents' deployments, printed as data on stdout.
//!
//! What each cloud's document grants, and why, is its plugin's (the `permissions` module of
//! each provider crate, reached through [`crate::backend::permissions`]): only the plugin
//! knows which native objects its translation writes, so only it can keep the grants to the
//! calls those need. The engine gathers the placement settings the plugin asks for, checks
//! them again, and hands them over.

use crate::error::Error;
use crate::intent::Intent;
use intentwall_contract::ProviderKind;
use std::collections::BTreeSet;

/// Values of a placement setting over every deployment on a cloud, in order, deduplicated.
///
/// The values become ARNs, scopes and comments of a policy someone will grant: each is
/// checked against its cloud's format again here (the loader already did), so an intent built
/// another way can never widen a grant with `*`, `..` or a line break.
pub(crate) fn placements(
    intent: &Intent,
    cloud: ProviderKind,
    keys: &[&str],
) -> Result<Vec<Vec<String>>, Error> {
    let schema = crate::backend::placement_schema(cloud)?;
    let mut seen = BTreeSet::new();
    for d in intent.deployments.values() {
        if let Some(p) = d.clouds.get(&cloud) {
            let mut vals = Vec::new();
            for k in keys {
                let v = p.settings.get(*k).cloned().unwrap_or_default();
                if let Err(why) = (schema.check)(k, &v) {
                    return Err(Error::UnsafeGrant {
                        key: k.to_string(),
                        value: v,
                        deployment: d.name.clone(),
                        why,
                    });
                }
                vals.push(v);
            }
            seen.insert(vals);
        }
    }
    Ok(seen.into_iter().collect())
}

/// The policy for one cloud as text, in the cloud's own document format: an error when no
/// deployment is placed on the cloud, as a policy granting nothing is not worth applying.
pub fn render(intent: &Intent, cloud: ProviderKind) -> Result<String, Error> {
    let doc = crate::backend::permissions(cloud)?;
    let places = placements(intent, cloud, doc.keys)?;
    if places.is_empty() {
        return Err(Error::NothingToGrant(cloud));
    }
    Ok((doc.render)(&places))
}
