//! Pictures of a deployment's view: Mermaid, Graphviz DOT and JSON. Names are the user's
//! and may hold anything the loader accepts, so every writer escapes what it emits: no name
//! can end a quoted label and add statements to the picture.

use super::{Node, View};
use intentwall_contract::Action;
use std::fmt::Write;

impl View<'_, '_> {
    /// A Mermaid node id for a name. Injective, so `a-b`, `a_b` and `a.b` stay three nodes:
    /// letters and digits as they are, `_` as `__`, `-` as `_h`, `.` as `_d`, anything else
    /// as `_x<hex>_`. An id never holds `_n`, so `<deployment id>_<node id>` is injective too.
    fn id(name: &str) -> String {
        let mut out = String::from("n_");
        for c in name.chars() {
            match c {
                c if c.is_ascii_alphanumeric() => out.push(c),
                '_' => out.push_str("__"),
                '-' => out.push_str("_h"),
                '.' => out.push_str("_d"),
                c => out.push_str(&format!("_x{:x}_", c as u32)),
            }
        }
        out
    }

    /// Mermaid flowchart (one subgraph per deployment).
    pub fn to_mermaid(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "  subgraph {}[\"deployment {}\"]",
            Self::id(self.deployment()),
            mermaid_text(self.deployment())
        );
        for (_, n) in self.nodes() {
            let id = format!("{}_{}", Self::id(self.deployment()), Self::id(n.name()));
            let label = mermaid_text(&node_label(n));
            let shape = match n.kind() {
                "network" => format!("{id}[(\"{label}\")]"),
                "composite" => format!("{id}[[\"{label}\"]]"),
                _ => format!("{id}[\"{label}\"]"),
            };
            let _ = writeln!(s, "    {shape}");
        }
        for (a, b, w) in self.edges() {
            let a = format!(
                "{}_{}",
                Self::id(self.deployment()),
                Self::id(self.graph[a].name())
            );
            let b = format!(
                "{}_{}",
                Self::id(self.deployment()),
                Self::id(self.graph[b].name())
            );
            let services = mermaid_text(&w.services().join(", "));
            let line = match (w.kind(), w.action()) {
                ("includes", _) => format!("{a} -.- {b}"),
                (_, Some(Action::Deny)) => format!("{a} -.->|\"deny {services}\"| {b}"),
                _ => format!("{a} -->|\"{services}\"| {b}"),
            };
            let _ = writeln!(s, "    {line}");
        }
        let _ = writeln!(s, "  end");
        s
    }

    /// Graphviz DOT cluster body for this deployment.
    pub fn to_dot(&self) -> String {
        let mut s = String::new();
        let dep = self.deployment();
        let _ = writeln!(s, "  subgraph {} {{", dot_str(&format!("cluster_{dep}")));
        let _ = writeln!(s, "    label={};", dot_str(&format!("deployment {dep}")));
        for (_, n) in self.nodes() {
            let shape = match n.kind() {
                "network" => "cylinder",
                "composite" => "folder",
                _ => "box",
            };
            let _ = writeln!(
                s,
                "    {} [label={}, shape={shape}{}];",
                dot_str(&format!("{dep}/{}", n.name())),
                dot_str(&node_label(n)),
                if n.sensitive() { ", color=red" } else { "" }
            );
        }
        for (a, b, w) in self.edges() {
            let services = w.services().join(", ");
            let style = match (w.kind(), w.action()) {
                ("includes", _) => "style=dotted, arrowhead=none".to_string(),
                (_, Some(Action::Deny)) => format!(
                    "label={}, color=red, arrowhead=tee",
                    dot_str(&format!("deny {services}"))
                ),
                _ => format!("label={}", dot_str(&services)),
            };
            let _ = writeln!(
                s,
                "    {} -> {} [{style}];",
                dot_str(&format!("{dep}/{}", self.graph[a].name())),
                dot_str(&format!("{dep}/{}", self.graph[b].name()))
            );
        }
        let _ = writeln!(s, "  }}");
        s
    }

    /// Nodes and edges as JSON values.
    pub fn to_json(&self) -> serde_json::Value {
        let nodes: Vec<_> = self.nodes().map(|(_, n)| n).collect();
        let edges: Vec<_> = self
            .edges()
            .map(|(a, b, w)| {
                serde_json::json!({
                    "from": self.graph[a].name(),
                    "to": self.graph[b].name(),
                    "kind": w.kind(),
                    "flow": w.flow().map(|f| &f.name),
                    "action": w.action(),
                    "services": w.services(),
                })
            })
            .collect();
        serde_json::json!({ "deployment": self.deployment(), "nodes": nodes, "edges": edges })
    }
}

/// A DOT double-quoted string: `"` and `\\` escaped, line breaks as DOT's `\\n`, other control
/// characters dropped, so no name or label can end the string and add statements.
fn dot_str(x: &str) -> String {
    let mut out = String::from("\"");
    for c in x.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for inside a Mermaid `"..."` label: everything but letters, digits, space and
/// `-_.,/:()+` as a Mermaid entity code (`#34;`), so a label cannot close its quotes or
/// bracket, and no markup (`<script>`) reaches the renderer.
fn mermaid_text(x: &str) -> String {
    let mut out = String::new();
    for c in x.chars() {
        if c.is_ascii_alphanumeric() || " -_.,/:()+".contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("#{};", c as u32));
        }
    }
    out
}

fn node_label(n: &Node) -> String {
    let mut l = n.name().to_string();
    if n.restricted() {
        l.push_str(" (egress restricted)");
    }
    if n.sensitive() {
        l.push_str(" (sensitive)");
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_mermaid_text_cannot_break_out() {
        let hostile = "a\"] ; evil [label=\"x\\\n<script>|`";
        let d = dot_str(hostile);
        // inside: every quote escaped, no raw line break
        let inner = &d[1..d.len() - 1];
        assert!(!inner.contains('\n'));
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                chars.next();
            } else {
                assert_ne!(c, '"', "{d}");
            }
        }
        let m = mermaid_text(hostile);
        assert!(
            m.chars()
                .all(|c| c.is_ascii_alphanumeric() || " -_.,/:()+#;".contains(c)),
            "{m}"
        );
    }

    #[test]
    fn mermaid_ids_are_injective() {
        let names = ["a-b", "a_b", "a.b", "a__b", "a_hb", "ab", "a_x2d_b"];
        let ids: std::collections::BTreeSet<String> = names.iter().map(|n| View::id(n)).collect();
        assert_eq!(ids.len(), names.len(), "{ids:?}");
    }
}
