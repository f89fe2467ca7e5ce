//! A plan written out target by target, while planning goes on ([`crate::plan::build_each`]).
//!
//! Why: the plan of a large estate is millions of rules; held whole until the end it needs
//! gigabytes, written as each target is ready it needs the targets in flight. The JSON written
//! here is byte for byte what `serde_json::to_writer_pretty` writes for the whole [`Plan`]
//! (tested), so a streamed plan file reads like any other.

use crate::plan::{Plan, TargetPlan};
use std::io::{self, Write};

/// Writes `pad` after every newline: a pretty JSON value nested `pad` deep. JSON strings
/// never hold a raw newline (it is escaped), so every newline byte is a line break.
struct Indent<'a, W: Write> {
    w: &'a mut W,
    pad: &'static [u8],
}

impl<W: Write> Write for Indent<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.w.write_all(&rest[..=i])?;
            self.w.write_all(self.pad)?;
            rest = &rest[i + 1..];
        }
        self.w.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

fn pretty<W: Write, T: serde::Serialize>(w: &mut W, pad: &'static [u8], v: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(Indent { w, pad }, v).map_err(io::Error::from)
}

/// The plan JSON document, written one target at a time.
pub struct JsonPlanWriter<W: Write> {
    w: W,
    targets: usize,
}

impl<W: Write> JsonPlanWriter<W> {
    /// Write everything before the first target; `header`'s own targets are ignored.
    pub fn begin(mut w: W, header: &Plan) -> io::Result<Self> {
        // the fields of `Plan` in declaration order (the round-trip test holds them equal)
        write!(w, "{{\n  \"format_version\": {},\n", header.format_version)?;
        w.write_all(b"  \"intent_digest\": ")?;
        serde_json::to_writer(&mut w, &header.intent_digest)?;
        write!(w, ",\n  \"prune_unmanaged\": {},\n", header.prune_unmanaged)?;
        w.write_all(b"  \"guardrails\": ")?;
        pretty(&mut w, b"  ", &header.guardrails)?;
        w.write_all(b",\n  \"targets\": [")?;
        Ok(JsonPlanWriter { w, targets: 0 })
    }

    /// Write one target.
    pub fn target(&mut self, t: &TargetPlan) -> io::Result<()> {
        self.w.write_all(if self.targets == 0 {
            b"\n    "
        } else {
            b",\n    "
        })?;
        pretty(&mut self.w, b"    ", t)?;
        self.targets += 1;
        Ok(())
    }

    /// Close the document (with a final newline) and flush.
    pub fn finish(mut self) -> io::Result<W> {
        if self.targets > 0 {
            self.w.write_all(b"\n  ")?;
        }
        self.w.write_all(b"]\n}\n")?;
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{Action, Change};
    use crate::simulate::SimReport;
    use intentwall_contract::{Finding, FindingKind, NativeObject, NativeState, ProviderKind};

    fn target(dep: &str, changes: usize) -> TargetPlan {
        let obj = |i: usize| NativeObject {
            kind: "rule".into(),
            key: format!("r{i}"),
            parent: Some("c\n\"x\"".into()),
            container: false,
            managed: true,
            foreign: false,
            flow: Some("f".into()),
            body: serde_json::json!({"a": [1, {"b": "line\nbreak"}], "e": {}, "l": []}).into(),
            raw: None,
            assigned: None,
            summary: "s".into(),
        };
        TargetPlan {
            deployment: dep.into(),
            provider: ProviderKind::Gcp,
            placement: [("network".to_string(), "n\"1".to_string())].into(),
            snapshot: "snap/x.json".into(),
            existed: true,
            fingerprint: "sha256:0".into(),
            changes: (0..changes)
                .map(|i| Change {
                    action: Action::Create,
                    key: format!("r{i}"),
                    before: None,
                    after: Some(obj(i)),
                })
                .collect(),
            unchanged: 1,
            managed_rules_before: 0,
            managed_rules_after: changes,
            simulation: SimReport::default(),
            findings: vec![],
            blocked: false,
            after: NativeState::default(),
            handed_out: None,
        }
    }

    fn streamed(plan: &Plan) -> String {
        let mut w = JsonPlanWriter::begin(Vec::new(), plan).unwrap();
        for t in &plan.targets {
            w.target(t).unwrap();
        }
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn streamed_json_is_the_pretty_document() {
        let finding = Finding {
            kind: FindingKind::Guardrail,
            deployment: "us".into(),
            provider: None,
            flow: Some("f\n1".into()),
            message: "m".into(),
        };
        for (guardrails, targets) in [
            (vec![], vec![]),
            (vec![finding.clone()], vec![]),
            (vec![], vec![target("us", 0)]),
            (
                vec![finding],
                vec![target("us", 2), target("eu", 0), target("ap", 3)],
            ),
        ] {
            let plan = Plan {
                format_version: crate::plan::FORMAT_VERSION,
                intent_digest: "sha256:\"q\"".into(),
                prune_unmanaged: true,
                guardrails,
                targets,
            };
            let whole = serde_json::to_string_pretty(&plan).unwrap() + "\n";
            assert_eq!(streamed(&plan), whole);
        }
    }
}
