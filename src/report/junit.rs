//! JUnit XML for CI test reports (GitLab's `artifacts:reports:junit`, GitHub test-report
//! actions, Jenkins): one test suite per target, one per deployment's guardrails.
//!
//! Each target's suite holds a `simulation` case (fails on a mismatching packet or an
//! unverifiable one), an `expectations` case (fails when an `expect` fails) and one case per
//! finding (always a failure: every finding blocks its target). The plan's counts of changes
//! are the suite's properties, so a report viewer shows what the target would change.

use super::{expects_passed, sim_line, target_title};
use crate::diff::Action;
use crate::plan::{Plan, TargetPlan};
use intentwall_contract::Finding;
use std::fmt::Write;

/// XML text and attribute values; control characters XML 1.0 cannot carry become U+FFFD.
pub(crate) fn xml(x: &str) -> String {
    x.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// One test case: its name, and the failure's type and message when it failed.
struct Case {
    name: String,
    failure: Option<(String, String)>,
    out: Option<String>,
    seconds: Option<f64>,
}

fn finding_case(f: &Finding) -> Case {
    Case {
        name: format!("{}: {}", f.kind, f.flow.as_deref().unwrap_or("-")),
        failure: Some((f.kind.to_string(), f.message.clone())),
        out: None,
        seconds: None,
    }
}

fn target_cases(t: &TargetPlan) -> Vec<Case> {
    let s = &t.simulation;
    let mut cases = vec![
        Case {
            name: "simulation".into(),
            failure: if s.mismatches > 0 {
                Some((
                    "mismatch".into(),
                    format!(
                        "{} probes or packet regions mismatch the intent",
                        s.mismatches
                    ),
                ))
            } else if s.unverifiable > 0 {
                Some((
                    "unverifiable".into(),
                    format!(
                        "{} probes or packet regions depend on rules whose match is unknown",
                        s.unverifiable
                    ),
                ))
            } else {
                None
            },
            out: Some(sim_line(t)),
            seconds: Some(s.millis as f64 / 1000.0),
        },
        Case {
            name: "expectations".into(),
            failure: (s.expectations_failed > 0).then(|| {
                (
                    "expectation".into(),
                    format!("{} expectation checks passed", expects_passed(t)),
                )
            }),
            out: Some(format!("{} expectation checks passed", expects_passed(t))),
            seconds: None,
        },
    ];
    cases.extend(t.findings.iter().map(finding_case));
    cases
}

/// A test suite: its name, the class name of its cases, properties, cases.
struct Suite {
    name: String,
    classname: String,
    props: Vec<(&'static str, usize)>,
    cases: Vec<Case>,
}

fn suite(
    s: &mut String,
    Suite {
        name,
        classname,
        props,
        cases,
    }: &Suite,
) {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let seconds: f64 = cases.iter().filter_map(|c| c.seconds).sum();
    let _ = writeln!(
        s,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{seconds:.3}\">",
        xml(name),
        cases.len(),
    );
    if !props.is_empty() {
        let _ = writeln!(s, "    <properties>");
        for (k, v) in props {
            let _ = writeln!(s, "      <property name=\"{k}\" value=\"{v}\"/>");
        }
        let _ = writeln!(s, "    </properties>");
    }
    for c in cases {
        let time = c
            .seconds
            .map(|t| format!(" time=\"{t:.3}\""))
            .unwrap_or_default();
        let _ = write!(
            s,
            "    <testcase classname=\"{}\" name=\"{}\"{time}>",
            xml(classname),
            xml(&c.name)
        );
        if let Some((kind, message)) = &c.failure {
            let _ = write!(
                s,
                "<failure type=\"{}\" message=\"{}\">{}</failure>",
                xml(kind),
                xml(message),
                xml(message)
            );
        }
        if let Some(out) = &c.out {
            let _ = write!(s, "<system-out>{}</system-out>", xml(out));
        }
        let _ = writeln!(s, "</testcase>");
    }
    let _ = writeln!(s, "  </testsuite>");
}

/// JUnit XML of a plan's checks: a suite per target, and one per deployment with guardrail
/// findings.
pub fn junit(plan: &Plan) -> String {
    let mut suites: Vec<Suite> = plan
        .targets
        .iter()
        .map(|t| {
            let props = vec![
                ("create", t.count(Action::Create)),
                ("update", t.count(Action::Update)),
                ("replace", t.count(Action::Replace)),
                ("delete", t.count(Action::Delete)),
                ("unchanged", t.unchanged),
            ];
            Suite {
                name: target_title(t),
                classname: target_title(t),
                props,
                cases: target_cases(t),
            }
        })
        .collect();
    let mut deployments: Vec<&str> = Vec::new();
    for f in &plan.guardrails {
        if !deployments.contains(&f.deployment.as_str()) {
            deployments.push(&f.deployment);
        }
    }
    for d in deployments {
        let cases = plan
            .guardrails
            .iter()
            .filter(|f| f.deployment == d)
            .map(finding_case)
            .collect();
        suites.push(Suite {
            name: format!("{d} / guardrails"),
            classname: format!("{d}.guardrails"),
            props: vec![],
            cases,
        });
    }
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites
        .iter()
        .map(|s| s.cases.iter().filter(|c| c.failure.is_some()).count())
        .sum();
    let mut s = String::new();
    let _ = writeln!(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        s,
        "<testsuites name=\"intentwall\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">"
    );
    for x in &suites {
        suite(&mut s, x);
    }
    let _ = writeln!(s, "</testsuites>");
    s
}
