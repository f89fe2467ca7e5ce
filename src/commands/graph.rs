//! `graph`: draw the service graph, or list the blast radius of a node with `--from`.

use crate::cli::{Cli, GraphArgs, GraphFormat};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::graph::ServiceGraph;
use crate::output::out;

/// Render the graphs of the selected deployments (or what `--from` reaches) to stdout.
pub fn run(cli: &Cli, args: &GraphArgs) -> Result<ExitStatus, Error> {
    let GraphArgs {
        format,
        deployment,
        from,
    } = args;
    let Some(intent) = super::load(cli)? else {
        return Ok(ExitStatus::Error);
    };
    if let Some(d) = deployment {
        if !intent.deployments.contains_key(d) {
            return Err(Error::UnknownDeployment(d.clone()));
        }
    }
    let g = ServiceGraph::build(
        intent
            .deployments
            .values()
            .filter(|d| deployment.as_ref().is_none_or(|x| x == &d.name)),
    );
    if let Some(start) = from {
        let mut text = String::new();
        let mut json = Vec::new();
        for d in g.views() {
            let reach = d.reachable_from(start).map_err(Error::Graph)?;
            text.push_str(&format!(
                "deployment {}: {} group(s) reachable from {start}\n",
                d.deployment(),
                reach.len()
            ));
            for r in &reach {
                text.push_str(&format!(
                    "  {:<16} {} hop(s) via {}\n",
                    r.group,
                    r.hops,
                    r.via.join(" -> ")
                ));
            }
            json.push(
                serde_json::json!({"deployment": d.deployment(), "from": start, "reachable": reach}),
            );
        }
        match format {
            GraphFormat::Json => out(&(serde_json::to_string_pretty(&json)? + "\n"))?,
            _ => out(&text)?,
        }
        return Ok(ExitStatus::Ok);
    }
    let graphs: Vec<_> = g.views().collect();
    let text = match format {
        GraphFormat::Mermaid => {
            let mut s = String::from("flowchart LR\n");
            for g in &graphs {
                s.push_str(&g.to_mermaid());
            }
            s
        }
        GraphFormat::Dot => {
            let mut s = String::from("digraph intentwall {\n  rankdir=LR;\n");
            for g in &graphs {
                s.push_str(&g.to_dot());
            }
            s.push_str("}\n");
            s
        }
        GraphFormat::Json => {
            let v: Vec<_> = graphs.iter().map(|g| g.to_json()).collect();
            serde_json::to_string_pretty(&v)? + "\n"
        }
        GraphFormat::Svg => crate::graph::svg::render(&graphs, &Default::default()),
    };
    out(&text)?;
    Ok(ExitStatus::Ok)
}
