//! `audit`: judge the state every target holds *now* against the intent, exhaustively.
//!
//! `plan` and `simulate` prove the state a target would hold *after* apply; an audit asks
//! the question a reviewer or an auditor asks: does what is deployed today do what the intent
//! says? Each target's observed state (managed and unmanaged rules as they are) is lowered by
//! its cloud's plugin and proved against the intent's oracle with the same symbolic check the
//! plan uses ([`intentwall_contract::check::check_exhaustive`]). Every differing region of
//! packets is classified:
//!
//! - **narrower**: the intent allows it, the cloud blocks it (an outage waiting to be noticed);
//! - **wider**: the intent denies it, the cloud lets it through (an exposure);
//! - **unverifiable**: the verdict depends on what a rule of unknown match really matches.
//!
//! A target with none is `compliant`; otherwise its verdict lists `drift-narrower`,
//! `drift-wider` and/or `unverified` (a target can be several at once). Renderers live in
//! [`render`] (human, Markdown) and [`html`] (the self-contained evidence page); the JSON is
//! [`Audit`] serialised.

pub mod html;
pub mod render;

use crate::backend;
use crate::error::Error;
use crate::plan::{self, Job, PlanOptions};
use intentwall_contract::check::{check_exhaustive, Mismatch, Unverifiable, REGIONS_COUNTED};
use intentwall_contract::{FlowIntent, Probe, ProviderKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Version of the audit JSON schema (docs/audit.md).
pub const FORMAT_VERSION: u32 = 1;

/// Output formats of `audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for people.
    Human,
    /// The versioned audit JSON (docs/audit.md).
    Json,
    /// A Markdown report (an issue, a pull request, a wiki page).
    Markdown,
    /// A self-contained HTML evidence page (no scripts, no external resources).
    Html,
}

/// What a target's observed state is, judged against the intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every packet gets the intent's verdict: proven, not sampled.
    Compliant,
    /// Traffic the intent denies is allowed: exposure.
    DriftWider,
    /// Traffic the intent allows is blocked: outage.
    DriftNarrower,
    /// Some packets' verdicts depend on rules whose match the model does not know.
    Unverified,
}

impl Verdict {
    /// The word used in every format.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compliant => "compliant",
            Verdict::DriftWider => "drift-wider",
            Verdict::DriftNarrower => "drift-narrower",
            Verdict::Unverified => "unverified",
        }
    }
}

/// How one region of packets differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    /// The intent denies, the native rules allow.
    Wider,
    /// The intent allows, the native rules deny.
    Narrower,
    /// The native verdict depends on rules of unknown match.
    Unverifiable,
}

impl DiffKind {
    /// The word used in every format.
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Wider => "wider",
            DiffKind::Narrower => "narrower",
            DiffKind::Unverifiable => "unverifiable",
        }
    }
}

/// What the intent says about a packet.
#[derive(Debug, Clone, Serialize)]
pub struct IntentSide {
    /// Delivered?
    pub allowed: bool,
    /// Why, in words.
    pub reason: String,
    /// The deciding flows (deny flows if a deny decided, else the admitting allows).
    pub flows: Vec<String>,
}

/// What the native rules do with a packet.
#[derive(Debug, Clone, Serialize)]
pub struct NativeSide {
    /// Delivered? (`None` for an unverifiable region: it depends on unknown matches.)
    pub allowed: Option<bool>,
    /// The deciding native rule; `None` when the cloud's default decided (no rule matched).
    pub rule: Option<String>,
    /// Whether that rule is intentwall's.
    pub managed: bool,
    /// The flow the rule's marker names, if any.
    pub flow: Option<String>,
    /// For unverifiable regions: the rules of unknown match that may match, and why unknown.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<(String, String)>,
}

/// One differing region of packets, shown by its smallest packet.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// Wider, narrower or unverifiable.
    pub kind: DiffKind,
    /// The counterexample as text: `src -> dst packet`.
    pub packet: String,
    /// The counterexample, structured.
    pub probe: Probe,
    /// The intent's verdict.
    pub intent: IntentSide,
    /// The native verdict and the rule that decided it.
    pub native: NativeSide,
}

impl Difference {
    fn mismatch(m: Mismatch) -> Difference {
        Difference {
            kind: if m.oracle.allowed {
                DiffKind::Narrower
            } else {
                DiffKind::Wider
            },
            packet: m.probe.to_string(),
            probe: m.probe,
            intent: IntentSide {
                allowed: m.oracle.allowed,
                reason: m.oracle.reason,
                flows: m.oracle.flows,
            },
            native: NativeSide {
                allowed: Some(m.native_allowed),
                rule: m.native_rule,
                managed: m.native_rule_managed,
                flow: m.native_rule_flow,
                unknown: Vec::new(),
            },
        }
    }

    fn unverifiable(u: Unverifiable) -> Difference {
        Difference {
            kind: DiffKind::Unverifiable,
            packet: u.probe.to_string(),
            probe: u.probe,
            intent: IntentSide {
                allowed: u.oracle.allowed,
                reason: u.oracle.reason,
                flows: u.oracle.flows,
            },
            native: NativeSide {
                allowed: None,
                rule: None,
                managed: false,
                flow: None,
                unknown: u.rules,
            },
        }
    }
}

/// Region counts of one target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Regions {
    /// Regions the intent denies and the cloud allows.
    pub wider: u64,
    /// Regions the intent allows and the cloud blocks.
    pub narrower: u64,
    /// Regions whose native verdict depends on unknown matches.
    pub unverifiable: u64,
    /// True when counting stopped at the per-target cap: the counts are "at least".
    pub capped: bool,
}

/// One target's audit.
#[derive(Debug, Clone, Serialize)]
pub struct TargetAudit {
    /// Deployment.
    pub deployment: String,
    /// Cloud.
    pub provider: ProviderKind,
    /// The placement's settings (VPC, region, account, NSG, network...).
    pub placement: BTreeMap<String, String>,
    /// Where the state was observed (the snapshot file).
    pub snapshot: PathBuf,
    /// False when there was no recorded state at all (judged as an empty target).
    pub existed: bool,
    /// Fingerprint of the observed state (the same digest a plan file records).
    pub fingerprint: String,
    /// `[compliant]`, or the kinds of drift found (a target can be several).
    pub verdict: Vec<Verdict>,
    /// Native rules judged (lowered from the observed state, managed and unmanaged).
    pub rules: usize,
    /// Of those, rules intentwall does not own.
    pub unmanaged_rules: usize,
    /// Packet equivalence classes the proof covers.
    pub classes: u64,
    /// Differing regions, by kind.
    pub regions: Regions,
    /// One counterexample per differing region (wider first, then narrower, then
    /// unverifiable), up to the per-target cap.
    pub differences: Vec<Difference>,
    /// Wall time of the proof, milliseconds.
    pub millis: u64,
}

impl TargetAudit {
    /// True when every packet gets the intent's verdict.
    pub fn compliant(&self) -> bool {
        self.verdict == [Verdict::Compliant]
    }

    /// `deployment / cloud`, the title every format uses.
    pub fn title(&self) -> String {
        format!("{} / {}", self.deployment, self.provider)
    }
}

/// A whole audit.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    /// Schema version.
    pub format_version: u32,
    /// When the audit ran: UTC, RFC 3339.
    pub generated_at: String,
    /// Digest of the intent files judged against.
    pub intent_digest: String,
    /// True when every target is compliant.
    pub compliant: bool,
    /// Targets, by deployment then cloud.
    pub targets: Vec<TargetAudit>,
}

impl Audit {
    /// Targets that are not compliant.
    pub fn drifted(&self) -> usize {
        self.targets.iter().filter(|t| !t.compliant()).count()
    }

    /// Targets whose verdict holds `v`.
    pub fn count(&self, v: Verdict) -> usize {
        self.targets
            .iter()
            .filter(|t| t.verdict.contains(&v))
            .count()
    }
}

/// Audit one observed target: pure, no I/O.
fn audit_target(job: Job<'_>) -> Result<TargetAudit, Error> {
    let started = Instant::now();
    let Job {
        dep,
        kind,
        intent,
        observed,
    } = job;
    let provider = backend::require(kind)?;
    // the observed state as it is: nothing composed, nothing diffed
    let policy = provider.lower(&observed.state, &intent);
    let allowances: Vec<FlowIntent> = provider.platform_allowances(&intent);
    // keep a counterexample for every region counted, so each can be classified
    let keep = usize::try_from(REGIONS_COUNTED).unwrap_or(usize::MAX);
    let report = check_exhaustive(&intent, &allowances, &policy, keep);
    let mut differences: Vec<Difference> = report
        .mismatches
        .into_iter()
        .map(Difference::mismatch)
        .chain(
            report
                .unverifiable
                .into_iter()
                .map(Difference::unverifiable),
        )
        .collect();
    differences.sort_by_key(|d| d.kind); // stable: the check's order within a kind
    let of = |k: DiffKind| differences.iter().filter(|d| d.kind == k).count() as u64;
    let mut regions = Regions {
        wider: of(DiffKind::Wider),
        narrower: of(DiffKind::Narrower),
        unverifiable: report.unverifiable_widening + report.unverifiable_narrowing,
        capped: report.mismatch_count_capped,
    };
    // every counted region has its example (keep = the cap); should that ever change, the
    // regions without one are still drift, of a kind the examples cannot tell
    let unclassified = report
        .mismatch_count
        .saturating_sub(regions.wider + regions.narrower);
    if unclassified > 0 {
        tracing::warn!(deployment = %dep.name, provider = %kind, unclassified,
            "mismatching regions without a counterexample; counted as wider");
        regions.wider += unclassified;
    }
    let mut verdict = Vec::new();
    if regions.wider > 0 {
        verdict.push(Verdict::DriftWider);
    }
    if regions.narrower > 0 {
        verdict.push(Verdict::DriftNarrower);
    }
    if regions.unverifiable > 0 {
        verdict.push(Verdict::Unverified);
    }
    if verdict.is_empty() {
        verdict.push(Verdict::Compliant);
    }
    let millis = started.elapsed().as_millis() as u64;
    tracing::info!(
        deployment = %dep.name, provider = %kind, classes = report.classes,
        wider = regions.wider, narrower = regions.narrower,
        unverifiable = regions.unverifiable, millis, "audited target"
    );
    Ok(TargetAudit {
        deployment: dep.name.clone(),
        provider: kind,
        placement: intent.settings.clone(),
        snapshot: observed.source,
        existed: observed.existed,
        fingerprint: observed.fingerprint,
        verdict,
        rules: policy.rules.len(),
        unmanaged_rules: policy.rules.iter().filter(|r| !r.managed).count(),
        classes: report.classes,
        regions,
        differences,
        millis,
    })
}

/// Audit every selected target of `opts` (its backend, deployment and cloud filters; the
/// pruning and keep-after settings play no part). `generated_at` is the time the report
/// states. Every target is observed first (all observation errors reported together), then
/// the targets are proved on all cores.
pub fn run(
    intent: &crate::intent::Intent,
    opts: &PlanOptions,
    generated_at: String,
) -> Result<Audit, Error> {
    let jobs = plan::observe(intent, opts)?;
    let mut targets = Vec::with_capacity(jobs.len());
    plan::in_order(jobs, plan::cores(), audit_target, |t| {
        targets.push(t?);
        Ok(())
    })?;
    Ok(Audit {
        format_version: FORMAT_VERSION,
        generated_at,
        intent_digest: intent.digest.clone(),
        compliant: targets.iter().all(TargetAudit::compliant),
        targets,
    })
}

/// The time an audit states: `now` (RFC 3339, any offset; `--now` / `INTENTWALL_NOW`, so
/// reports are reproducible in tests) or the system clock, in UTC to the second, RFC 3339.
pub fn timestamp(now: Option<&str>) -> Result<String, Error> {
    use time::format_description::well_known::Rfc3339;
    let t = match now {
        Some(s) => time::OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
            Error::usage(format!(
                "--now / INTENTWALL_NOW `{s}` is not an RFC 3339 time (like \
                 2026-11-22T09:30:00Z): {e}"
            ))
        })?,
        None => time::OffsetDateTime::now_utc(),
    };
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(|_| Error::Internal("zero nanoseconds are always valid"))?;
    t.format(&Rfc3339)
        .map_err(|e| Error::usage(format!("cannot write the time {t} as RFC 3339: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_rfc3339_to_the_second() {
        assert_eq!(
            timestamp(Some("2026-11-22T10:30:15.25+02:00")).unwrap(),
            "2026-11-22T08:30:15Z"
        );
        assert!(timestamp(Some("2026-11-22")).is_err());
        let now = timestamp(None).unwrap();
        assert!(now.ends_with('Z') && now.len() == 20, "{now}");
    }

    #[test]
    fn verdict_words() {
        let all = [
            Verdict::Compliant,
            Verdict::DriftWider,
            Verdict::DriftNarrower,
            Verdict::Unverified,
        ];
        for v in all {
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::Value::from(v.as_str())
            );
        }
    }
}
