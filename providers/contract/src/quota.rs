//! Cloud limits as configuration: which limits a placement may set under `quotas:`, their
//! defaults (the clouds' documented defaults) and the hard maxima a value may not exceed.
//!
//! One table per cloud, read by the intent loader (to validate `quotas:` with positions) and
//! by the translators (to check and to split), so the two can never disagree on a key. A
//! placement's values reach the translator as settings `quotas.<key>` = decimal text.
//!
//! Adjustable quotas (AWS rules per security group, GCP firewall rules per project) may be
//! raised as far as the cloud allows once the account's quota is raised; fixed limits
//! (Azure's NSG limits, GCP's per-rule limits) can only be lowered, e.g. to keep headroom.

use crate::{DeploymentIntent, ProviderKind};

/// One configurable limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaSpec {
    /// Key under `quotas:` (`rules_per_sg`).
    pub key: &'static str,
    /// The cloud's documented default; `None` when none is documented (then the limit is
    /// only checked when configured).
    pub default: Option<usize>,
    /// The largest value the cloud allows at all; `None` when none is documented.
    pub max: Option<usize>,
    /// What is counted, for messages.
    pub what: &'static str,
    /// How the cloud's own limit is raised (or that it cannot be).
    pub raise: &'static str,
}

const AWS: &[QuotaSpec] = &[QuotaSpec {
    key: "rules_per_sg",
    default: Some(60),
    max: Some(1000),
    what: "inbound or outbound rules per security group and address family",
    raise: "request an increase of `Inbound or outbound rules per security group` in Service Quotas (rules per SG × SGs per network interface may not exceed 1,000)",
}];

const AZURE: &[QuotaSpec] = &[
    QuotaSpec {
        key: "rules_per_nsg",
        default: Some(1000),
        max: Some(1000),
        what: "security rules per network security group",
        raise: "Azure's fixed limit: split the deployment over more NSGs or simplify the intent",
    },
    QuotaSpec {
        key: "prefixes_per_nsg",
        default: Some(4000),
        max: Some(4000),
        what: "address prefixes per side (source, destination) across one NSG",
        raise: "Azure's fixed limit: use fewer, wider networks or simplify the intent",
    },
    QuotaSpec {
        key: "asgs_per_nsg",
        default: Some(100),
        max: Some(100),
        what: "application security groups referenced across one NSG",
        raise: "Azure's fixed limit: merge groups or split the deployment",
    },
];

const GCP: &[QuotaSpec] = &[
    QuotaSpec {
        key: "firewall_rules",
        default: None,
        max: None,
        what: "VPC firewall rules in the project (all networks)",
        raise: "request more `Firewall rules` quota for the project in the Cloud console (Quotas)",
    },
    QuotaSpec {
        key: "ranges_per_rule",
        default: Some(256),
        max: Some(5000),
        what: "source or destination ranges per firewall rule",
        raise: "a system limit: 256 in older documentation, 5,000 on the current quota page",
    },
    QuotaSpec {
        key: "ports_per_rule",
        default: Some(256),
        max: Some(256),
        what: "port entries per firewall rule",
        raise: "a system limit",
    },
    QuotaSpec {
        key: "target_tags_per_rule",
        default: Some(70),
        max: Some(70),
        what: "target tags per firewall rule",
        raise: "a system limit",
    },
    QuotaSpec {
        key: "service_accounts_per_rule",
        default: Some(10),
        max: Some(10),
        what: "source or target service accounts per firewall rule",
        raise: "a system limit (10 is the conservative value; no higher one is documented)",
    },
];

/// Prefix of the settings that carry configured quotas (`quotas.rules_per_sg`).
pub const SETTING_PREFIX: &str = "quotas.";

/// The configurable limits of a cloud.
pub fn specs(kind: ProviderKind) -> &'static [QuotaSpec] {
    match kind {
        ProviderKind::Aws => AWS,
        ProviderKind::Azure => AZURE,
        ProviderKind::Gcp => GCP,
    }
}

/// The spec of one key, if the cloud has it.
pub fn spec(kind: ProviderKind, key: &str) -> Option<&'static QuotaSpec> {
    specs(kind).iter().find(|s| s.key == key)
}

/// Check a configured value against a spec: a positive integer no larger than the hard
/// maximum. The error says what is wrong, for the intent loader to place.
pub fn validate(spec: &QuotaSpec, text: &str) -> Result<usize, String> {
    let t = text.trim();
    let n: usize = match t.parse() {
        Ok(n) => n,
        // all digits but too large for a number: certainly above any maximum
        Err(_) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => usize::MAX,
        Err(_) => {
            return Err(format!(
                "quota `{}` must be a whole number, found `{text}`",
                spec.key
            ))
        }
    };
    if n == 0 {
        return Err(format!("quota `{}` must be at least 1", spec.key));
    }
    if let Some(max) = spec.max.filter(|&m| n > m) {
        return Err(format!(
            "quota `{}` = {t} is above the cloud's maximum of {max} {}",
            spec.key, spec.what
        ));
    }
    Ok(n)
}

/// The limit in force for `key` on this target: the configured value, else the cloud's
/// default; `None` when neither exists (the limit is not checked). A configured value that
/// does not validate (only possible when settings bypass the intent loader) counts as unset.
pub fn quota(intent: &DeploymentIntent, key: &str) -> Option<usize> {
    let spec = spec(intent.provider, key)?;
    intent
        .setting(&format!("{SETTING_PREFIX}{key}"))
        .and_then(|t| validate(spec, t).ok())
        .or(spec.default)
}

/// Where a limit in force comes from and how to raise it, for `limit` findings:
/// `quota `rules_per_sg` = 60 (the default); to raise it, ... then set ...`.
pub fn explain(intent: &DeploymentIntent, key: &str) -> String {
    let Some(spec) = spec(intent.provider, key) else {
        return format!("quota `{key}`");
    };
    let configured = intent
        .setting(&format!("{SETTING_PREFIX}{key}"))
        .and_then(|t| validate(spec, t).ok());
    let value = configured.or(spec.default);
    let source = match (configured, value) {
        (Some(_), _) => "configured",
        (None, Some(_)) => "the cloud's default",
        (None, None) => "not set",
    };
    let value = value.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let at_max = spec.max.is_some() && configured.or(spec.default) == spec.max;
    if at_max {
        format!(
            "quota `{key}` = {value} ({source}), the cloud's maximum: {}",
            spec.raise
        )
    } else {
        format!(
            "quota `{key}` = {value} ({source}); to raise it: {}, then set `{}: {{ quotas: {{ {key}: N }} }}` in the placement{}",
            spec.raise,
            intent.provider,
            spec.max.map(|m| format!(" (at most {m})")).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_problem() {
        let s = spec(ProviderKind::Aws, "rules_per_sg").unwrap();
        assert_eq!(validate(s, "200"), Ok(200));
        assert!(validate(s, "0").unwrap_err().contains("at least 1"));
        assert!(validate(s, "1001").unwrap_err().contains("maximum of 1000"));
        assert!(validate(s, "-5").unwrap_err().contains("whole number"));
        assert!(validate(s, "ten").unwrap_err().contains("whole number"));
        assert!(validate(s, "99999999999999999999999")
            .unwrap_err()
            .contains("maximum of 1000"));
        assert!(spec(ProviderKind::Aws, "rules_per_nsg").is_none());
    }

    #[test]
    fn every_default_is_within_its_maximum() {
        for k in ProviderKind::ALL {
            for s in specs(k) {
                if let (Some(d), Some(m)) = (s.default, s.max) {
                    assert!(d <= m, "{k} {}", s.key);
                }
            }
        }
    }
}
