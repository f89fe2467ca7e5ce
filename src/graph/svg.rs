//! The service graph as SVG, laid out here in pure Rust (no Graphviz at run time), so
//! `graph --format svg` works on a bare machine and the audit's evidence page can inline the
//! picture.
//!
//! The layout is a small layered (Sugiyama-style) one, left to right like the DOT picture:
//!
//! 1. parallel edges of one kind (allow flows, deny flows, nesting) between two nodes are
//!    merged into one edge whose label lists every service;
//! 2. cycles are broken by reversing the back edges of a depth-first search in node order
//!    (the edge is still drawn pointing the way the flow goes);
//! 3. nodes get layers by longest path from the sources, then each source is pulled right
//!    next to its nearest successor, so `corp -> db` does not span the whole picture;
//! 4. an edge spanning several layers gets a point in every layer between (a "dummy"), so it
//!    is routed around the nodes, not through them;
//! 5. each layer is ordered by the barycentre of its neighbours, sweeping both ways a few
//!    times, which removes most crossings;
//! 6. layers are stacked and centred; edges are cubic curves through their points.
//!
//! Everything is deterministic (node order, then integer ties), so the same intent gives the
//! same picture byte for byte. Every name reaches the document through [`xml`], so no name
//! can add markup.

use super::{Edge, Node, View};
use intentwall_contract::Action;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

const CHAR_W: f64 = 7.0;
const NODE_H: f64 = 28.0;
const DUMMY_H: f64 = 6.0;
const V_GAP: f64 = 14.0;
const H_GAP: f64 = 120.0;
const MARGIN: f64 = 16.0;
const TITLE_H: f64 = 30.0;
const LABEL_MAX: usize = 36;
const SWEEPS: usize = 8;

/// Text and attribute values for XML: markup characters as entities, control characters
/// (which XML 1.0 cannot carry) dropped.
pub fn xml(x: &str) -> String {
    let mut out = String::with_capacity(x.len());
    for c in x.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// What kind of line an edge is drawn as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Line {
    Includes,
    Allow,
    Deny,
}

/// One merged edge: endpoints (local node indices), kind, services.
struct Merged {
    from: usize,
    to: usize,
    line: Line,
    label: String,
}

/// A box in a layer: a node, or a point an edge passes through.
struct Item {
    w: f64,
    h: f64,
    node: Option<usize>,
}

/// One deployment laid out: item boxes, their positions, and each edge's chain of items.
struct Layout {
    items: Vec<Item>,
    x: Vec<f64>,
    y: Vec<f64>,
    /// Per merged non-loop edge: its items from the drawn start to the drawn end.
    chains: Vec<(usize, Vec<usize>)>,
    width: f64,
    height: f64,
}

fn node_label(n: &Node<'_>) -> String {
    let mut l = n.name().to_string();
    if n.restricted() {
        l.push_str(" (egress restricted)");
    }
    if n.sensitive() {
        l.push_str(" (sensitive)");
    }
    l
}

fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W + 20.0
}

fn short(s: &str) -> String {
    if s.chars().count() <= LABEL_MAX {
        return s.to_string();
    }
    let mut t: String = s.chars().take(LABEL_MAX - 1).collect();
    t.push('…');
    t
}

/// Merge parallel edges of one kind; keep loops apart (they do not take part in layering).
fn merged(view: &View<'_, '_>, local: &HashMap<petgraph::graph::NodeIndex, usize>) -> Vec<Merged> {
    let mut by: BTreeMap<(usize, usize, Line), Vec<String>> = BTreeMap::new();
    for (a, b, e) in view.edges() {
        let (Some(&a), Some(&b)) = (local.get(&a), local.get(&b)) else {
            continue;
        };
        let line = match e {
            Edge::Includes => Line::Includes,
            Edge::Flow(f) if f.action == Action::Deny => Line::Deny,
            Edge::Flow(_) => Line::Allow,
        };
        let services = by.entry((a, b, line)).or_default();
        for s in e.services() {
            if !services.contains(&s) {
                services.push(s);
            }
        }
    }
    by.into_iter()
        .map(|((from, to, line), services)| Merged {
            from,
            to,
            line,
            label: match line {
                Line::Includes => String::new(),
                Line::Deny => format!("deny {}", services.join(", ")),
                Line::Allow => services.join(", "),
            },
        })
        .collect()
}

/// Edges whose reversal makes the graph acyclic: the back edges of a depth-first search
/// taken in node order.
fn back_edges(n: usize, out: &[Vec<usize>]) -> BTreeSet<(usize, usize)> {
    let mut state = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
    let mut back = BTreeSet::new();
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(&w) = out[v].get(*next) {
                *next += 1;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => {
                        back.insert((v, w));
                    }
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    back
}

/// Layers by longest path on an acyclic edge set, sources then pulled next to their nearest
/// successor.
fn layers(n: usize, dag: &BTreeSet<(usize, usize)>) -> Vec<usize> {
    let mut indeg = vec![0usize; n];
    let mut succ = vec![Vec::new(); n];
    let mut pred = vec![Vec::new(); n];
    for &(a, b) in dag {
        indeg[b] += 1;
        succ[a].push(b);
        pred[b].push(a);
    }
    let mut layer = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).rev().filter(|&v| indeg[v] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(v) = ready.pop() {
        order.push(v);
        for &w in &succ[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indeg[w] -= 1;
            if indeg[w] == 0 {
                ready.push(w);
            }
        }
    }
    for v in (0..n).filter(|&v| pred[v].is_empty() && !succ[v].is_empty()) {
        if let Some(nearest) = succ[v].iter().map(|&w| layer[w]).min() {
            layer[v] = nearest.saturating_sub(1);
        }
    }
    layer
}

fn layout(labels: &[String], edges: &[Merged]) -> Layout {
    let n = labels.len();
    let mut items: Vec<Item> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| Item {
            w: text_width(l),
            h: NODE_H,
            node: Some(i),
        })
        .collect();
    let mut out = vec![Vec::new(); n];
    for e in edges.iter().filter(|e| e.from != e.to) {
        if !out[e.from].contains(&e.to) {
            out[e.from].push(e.to);
        }
    }
    let back = back_edges(n, &out);
    let flip = |a: usize, b: usize| back.contains(&(a, b));
    let dag: BTreeSet<(usize, usize)> = edges
        .iter()
        .filter(|e| e.from != e.to)
        .map(|e| {
            if flip(e.from, e.to) {
                (e.to, e.from)
            } else {
                (e.from, e.to)
            }
        })
        .collect();
    let mut layer_of = layers(n, &dag);

    // chains through dummy items, in layer order (left to right)
    let mut chains = Vec::new();
    let mut segs: Vec<(usize, usize)> = Vec::new();
    for (k, e) in edges.iter().enumerate() {
        if e.from == e.to {
            continue;
        }
        let (l, r) = if flip(e.from, e.to) {
            (e.to, e.from)
        } else {
            (e.from, e.to)
        };
        let mut chain = vec![l];
        for at in layer_of[l] + 1..layer_of[r] {
            items.push(Item {
                w: 0.0,
                h: DUMMY_H,
                node: None,
            });
            layer_of.push(at);
            chain.push(items.len() - 1);
        }
        chain.push(r);
        segs.extend(chain.windows(2).map(|w| (w[0], w[1])));
        if flip(e.from, e.to) {
            chain.reverse(); // drawn from the flow's source
        }
        chains.push((k, chain));
    }

    // order each layer by barycentres
    let depth = layer_of.iter().copied().max().map_or(0, |m| m + 1);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (i, &l) in layer_of.iter().enumerate() {
        layers[l].push(i);
    }
    let mut left = vec![Vec::new(); items.len()];
    let mut right = vec![Vec::new(); items.len()];
    for &(a, b) in &segs {
        right[a].push(b);
        left[b].push(a);
    }
    let mut pos = vec![0usize; items.len()];
    let index = |layers: &[Vec<usize>], pos: &mut [usize]| {
        for l in layers {
            for (p, &i) in l.iter().enumerate() {
                pos[i] = p;
            }
        }
    };
    index(&layers, &mut pos);
    for sweep in 0..SWEEPS {
        let down = sweep % 2 == 0;
        let order: Vec<usize> = if down {
            (1..depth).collect()
        } else {
            (0..depth.saturating_sub(1)).rev().collect()
        };
        for l in order {
            let nbrs = if down { &left } else { &right };
            // barycentre ×1000 as an integer: exact, deterministic ties
            let mut keyed: Vec<(u64, usize, usize)> = layers[l]
                .iter()
                .enumerate()
                .map(|(p, &i)| {
                    let ns = &nbrs[i];
                    let bary = if ns.is_empty() {
                        p as u64 * 1000
                    } else {
                        ns.iter().map(|&j| pos[j] as u64 * 1000).sum::<u64>() / ns.len() as u64
                    };
                    (bary, p, i)
                })
                .collect();
            keyed.sort_unstable();
            layers[l] = keyed.into_iter().map(|(_, _, i)| i).collect();
            for (p, &i) in layers[l].iter().enumerate() {
                pos[i] = p;
            }
        }
    }

    // coordinates: layers left to right, each stack centred vertically
    let stack = |l: &[usize]| -> f64 {
        let h: f64 = l.iter().map(|&i| items[i].h).sum();
        h + V_GAP * l.len().saturating_sub(1) as f64
    };
    let tallest = layers.iter().map(|l| stack(l)).fold(NODE_H, f64::max);
    let mut x = vec![0.0; items.len()];
    let mut y = vec![0.0; items.len()];
    let mut cx = MARGIN;
    for l in &layers {
        let w = l.iter().map(|&i| items[i].w).fold(0.0, f64::max);
        let mut cy = TITLE_H + MARGIN + (tallest - stack(l)) / 2.0;
        for &i in l {
            x[i] = cx + (w - items[i].w) / 2.0;
            y[i] = cy;
            cy += items[i].h + V_GAP;
        }
        cx += w + H_GAP;
    }
    let width = (cx - H_GAP + MARGIN).max(240.0);
    Layout {
        items,
        x,
        y,
        chains,
        width,
        height: TITLE_H + 2.0 * MARGIN + tallest + NODE_H, // room for loops above the top row
    }
}

/// Where an edge leaves or enters an item: the side facing the other end.
fn port(lay: &Layout, i: usize, toward_x: f64) -> (f64, f64) {
    let it = &lay.items[i];
    let cy = lay.y[i] + it.h / 2.0;
    if it.node.is_none() {
        return (lay.x[i], cy);
    }
    if toward_x >= lay.x[i] + it.w / 2.0 {
        (lay.x[i] + it.w, cy)
    } else {
        (lay.x[i], cy)
    }
}

fn centre_x(lay: &Layout, i: usize) -> f64 {
    lay.x[i] + lay.items[i].w / 2.0
}

/// One deployment's picture as an SVG group at vertical offset `top`; `marked` names the
/// nodes to highlight (the audit marks groups with drift).
fn deployment(view: &View<'_, '_>, marked: &BTreeSet<String>, top: f64) -> (String, f64, f64) {
    let nodes: Vec<&Node<'_>> = view.nodes().map(|(_, n)| n).collect();
    let local: HashMap<_, _> = view.nodes().enumerate().map(|(k, (i, _))| (i, k)).collect();
    let labels: Vec<String> = nodes.iter().map(|n| node_label(n)).collect();
    let edges = merged(view, &local);
    let lay = layout(&labels, &edges);
    let dep = view.deployment();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<g class=\"deployment\" data-deployment=\"{}\" transform=\"translate(0,{top:.1})\">",
        xml(dep)
    );
    let _ = writeln!(
        s,
        "<rect class=\"frame\" x=\"0.5\" y=\"0.5\" width=\"{:.1}\" height=\"{:.1}\"/>",
        lay.width - 1.0,
        lay.height - 1.0
    );
    let _ = writeln!(
        s,
        "<text class=\"title\" x=\"{MARGIN:.1}\" y=\"21.0\">deployment {}</text>",
        xml(dep)
    );
    // edges first, so nodes sit on top of them
    for (k, chain) in &lay.chains {
        let e = &edges[*k];
        let first = chain[0];
        let last = chain[chain.len() - 1];
        let mut pts = vec![port(&lay, first, centre_x(&lay, chain[1]))];
        for &i in &chain[1..chain.len() - 1] {
            pts.push((lay.x[i], lay.y[i] + lay.items[i].h / 2.0));
        }
        pts.push(port(&lay, last, centre_x(&lay, chain[chain.len() - 2])));
        let mut d = format!("M{:.1},{:.1}", pts[0].0, pts[0].1);
        for w in pts.windows(2) {
            let ((px, py), (qx, qy)) = (w[0], w[1]);
            let mx = (px + qx) / 2.0;
            let _ = write!(d, " C{mx:.1},{py:.1} {mx:.1},{qy:.1} {qx:.1},{qy:.1}");
        }
        // the label sits at the middle point, or between the two middle points
        let m = pts.len() / 2;
        let a = if pts.len() % 2 == 0 {
            pts[m - 1]
        } else {
            pts[m]
        };
        edge_svg(&mut s, e, &nodes, &d, a, pts[m]);
    }
    for e in edges.iter().filter(|e| e.from == e.to) {
        let i = e.from;
        let (x0, y0) = (lay.x[i] + lay.items[i].w - 24.0, lay.y[i]);
        let d = format!(
            "M{:.1},{y0:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{y0:.1}",
            x0,
            x0 - 4.0,
            y0 - 26.0,
            x0 + 20.0,
            y0 - 26.0,
            x0 + 16.0
        );
        let at = (x0 + 8.0, y0 - 20.0);
        edge_svg(&mut s, e, &nodes, &d, at, at);
    }
    for (i, n) in nodes.iter().enumerate() {
        let (x, y, w) = (lay.x[i], lay.y[i], lay.items[i].w);
        let mut class = format!("node {}", n.kind());
        if n.sensitive() {
            class.push_str(" sensitive");
        }
        if marked.contains(n.name()) {
            class.push_str(" drift");
        }
        let rx = if n.kind() == "network" { 14.0 } else { 4.0 };
        let _ = writeln!(
            s,
            "<g class=\"{class}\" data-name=\"{}\"><title>{} ({})</title>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{NODE_H:.1}\" rx=\"{rx:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            xml(n.name()),
            xml(&labels[i]),
            n.kind(),
            x + w / 2.0,
            y + NODE_H / 2.0 + 4.0,
            xml(&labels[i])
        );
    }
    let _ = writeln!(s, "</g>");
    (s, lay.width, lay.height)
}

/// One edge: its path, and its label at the midpoint of its middle segment.
fn edge_svg(
    s: &mut String,
    e: &Merged,
    nodes: &[&Node<'_>],
    d: &str,
    a: (f64, f64),
    b: (f64, f64),
) {
    let (class, marker) = match e.line {
        Line::Includes => ("edge includes", ""),
        Line::Allow => ("edge allow", " marker-end=\"url(#iw-arrow)\""),
        Line::Deny => ("edge deny", " marker-end=\"url(#iw-tee)\""),
    };
    let what = match e.line {
        Line::Includes => "includes".to_string(),
        _ => e.label.clone(),
    };
    let _ = writeln!(
        s,
        "<path class=\"{class}\" d=\"{d}\"{marker}><title>{} -&gt; {}: {}</title></path>",
        xml(nodes[e.from].name()),
        xml(nodes[e.to].name()),
        xml(&what)
    );
    if !e.label.is_empty() {
        let _ = writeln!(
            s,
            "<text class=\"label{}\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            if e.line == Line::Deny { " deny" } else { "" },
            (a.0 + b.0) / 2.0,
            (a.1 + b.1) / 2.0 - 3.0,
            xml(&short(&e.label))
        );
    }
}

/// The style every picture carries (inline, so the SVG stands alone and an HTML page that
/// inlines it needs nothing else).
const STYLE: &str = "\
.frame{fill:#fff;stroke:#d0d7de}\
.title{font:bold 14px sans-serif;fill:#24292f}\
.node rect{fill:#ddf4ff;stroke:#0969da;stroke-width:1.2}\
.node.composite rect{fill:#fbefff;stroke:#8250df;stroke-dasharray:4 2}\
.node.network rect{fill:#dafbe1;stroke:#1a7f37}\
.node.sensitive rect{stroke-width:2.4}\
.node.drift rect{fill:#ffebe9;stroke:#cf222e;stroke-width:2.4}\
.node text{font:12px sans-serif;fill:#24292f;text-anchor:middle}\
.edge{fill:none;stroke:#57606a;stroke-width:1.2}\
.edge.deny{stroke:#cf222e;stroke-dasharray:5 3}\
.edge.includes{stroke:#8c959f;stroke-dasharray:2 3}\
.label{font:10px sans-serif;fill:#57606a;text-anchor:middle;paint-order:stroke;stroke:#fff;stroke-width:3px}\
.label.deny{fill:#cf222e}";

/// The graphs of some deployments as one SVG document, stacked top to bottom. `marked`
/// holds `(deployment, node)` pairs to highlight (none for `graph --format svg`).
pub fn render(views: &[View<'_, '_>], marked: &BTreeSet<(String, String)>) -> String {
    let mut body = String::new();
    let (mut width, mut top) = (240.0f64, 0.0f64);
    for v in views {
        let mine: BTreeSet<String> = marked
            .iter()
            .filter(|(d, _)| d == v.deployment())
            .map(|(_, n)| n.clone())
            .collect();
        let (g, w, h) = deployment(v, &mine, top);
        body.push_str(&g);
        width = width.max(w);
        top += h + MARGIN;
    }
    let height = (top - MARGIN).max(40.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"iw-graph\" width=\"{width:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" \
         aria-label=\"intentwall service graph\">"
    );
    let _ = writeln!(
        s,
        "<style>{STYLE}</style>\n<defs>\
         <marker id=\"iw-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" \
         fill=\"#57606a\"/></marker>\
         <marker id=\"iw-tee\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto\"><path d=\"M8,0 L8,10\" stroke=\"#cf222e\" \
         stroke-width=\"3\"/></marker></defs>"
    );
    s.push_str(&body);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests;
