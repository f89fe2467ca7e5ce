//! # intentwall
//!
//! Keeps the firewalls of many cloud regions in line with one version-controlled statement of
//! security intent. The pipeline, one module per stage:
//!
//! ```text
//! intents/ --intent::load--> Intent --graph--> ServiceGraph (pictures, blast radius)
//!        \--guardrails--> findings
//! ServiceGraph --view(deployment).resolve(cloud)--> DeploymentIntent --Provider::translate--> desired
//! snapshots/ --backend::snapshot::read--> observed (managed + unmanaged)
//! (observed, desired) --diff--> ChangeSet --report--> stdout / plan file / --emit
//! Provider::lower(state after apply) --simulate--> verdicts == oracle(intent)
//!                                        for every probe, expectation and packet class
//! apply(plan) --> fresh? guarded? --> backend write --> read again --> diff must be empty
//! ```
//!
//! Exit codes are an API: 0 ok/no changes, 2 changes planned, 3 blocked
//! (mismatch, failed expectation, guardrail, inexpressible intent, conflict), 1 error.

pub mod apply;
pub mod backend;
pub mod cli;
pub mod cycles;
pub mod diag;
pub mod diff;
pub mod graph;
pub mod intent;
pub mod logging;
pub mod paths;
pub mod permissions;
pub mod plan;
pub mod report;
pub mod simulate;
pub mod source;

use cli::{Cli, Command, GraphFormat, StateKind};
use std::io::Write;

/// Exit code: success, nothing to change.
pub const EXIT_OK: u8 = 0;
/// Exit code: bad input, usage, I/O or cloud error.
pub const EXIT_ERROR: u8 = 1;
/// Exit code: plan has changes.
pub const EXIT_CHANGES: u8 = 2;
/// Exit code: blocked by a finding.
pub const EXIT_BLOCKED: u8 = 3;

fn today(cli: &Cli) -> anyhow::Result<time::Date> {
    match &cli.today {
        Some(s) => {
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(s, &fmt).map_err(|e| {
                anyhow::anyhow!("--today / INTENTWALL_TODAY `{s}` is not YYYY-MM-DD: {e}")
            })
        }
        None => Ok(time::OffsetDateTime::now_utc().date()),
    }
}

/// Load the intents; on errors print every diagnostic and return `None`.
fn load(cli: &Cli) -> anyhow::Result<Option<intent::Intent>> {
    let opts = intent::LoadOptions { today: today(cli)? };
    match intent::load(&cli.intents, &opts) {
        Ok(loaded) => {
            if !loaded.warnings.is_empty() {
                eprint!("{}", loaded.warnings);
            }
            Ok(Some(loaded.intent))
        }
        Err(diags) => {
            eprint!("{diags}");
            Ok(None)
        }
    }
}

/// Write to stdout through a buffer; a closed pipe (`| head`) is not an error of ours.
fn to_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let mut o = std::io::BufWriter::new(std::io::stdout().lock());
    match write(&mut o).and_then(|_| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Write a value as pretty JSON to stdout without building the text first.
fn out_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    to_stdout(|o| {
        serde_json::to_writer_pretty(&mut *o, v)?;
        o.write_all(b"\n")
    })
}

fn out(s: &str) -> anyhow::Result<()> {
    to_stdout(|o| o.write_all(s.as_bytes()))
}

/// Standard output that a reader may close (`| head`): from then on writes are dropped, as
/// the data is of no use to anyone; planning and the plan file go on.
struct Stdout {
    w: Option<std::io::BufWriter<std::io::StdoutLock<'static>>>,
}

impl Stdout {
    fn new() -> Stdout {
        Stdout {
            w: Some(std::io::BufWriter::new(std::io::stdout().lock())),
        }
    }

    fn closed<T>(&mut self, r: std::io::Result<T>, or: T) -> std::io::Result<T> {
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.w = None;
                Ok(or)
            }
            r => r,
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.w {
            Some(w) => {
                let r = w.write(buf);
                self.closed(r, buf.len())
            }
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.w {
            Some(w) => {
                let r = w.flush();
                self.closed(r, ())
            }
            None => Ok(()),
        }
    }
}

/// `plan` in JSON or human text: each target is written (to stdout, and to the plan file
/// with `--out`) as soon as it is planned, then dropped, so memory follows the targets in
/// flight rather than the estate.
fn plan_streamed(
    intent: &intent::Intent,
    opts: &plan::PlanOptions,
    format: report::Format,
    plan_out: Option<&std::path::Path>,
) -> anyhow::Result<u8> {
    use report::stream::JsonPlanWriter;
    enum Out {
        Json(JsonPlanWriter<Stdout>),
        Human(Stdout),
    }
    let header = plan::header(intent, opts);
    // opened with the first target, so a plan that fails before any target (a bad
    // snapshot) prints nothing at all
    let open = || -> anyhow::Result<Out> {
        Ok(match format {
            report::Format::Json => Out::Json(JsonPlanWriter::begin(Stdout::new(), &header)?),
            _ => {
                let mut o = Stdout::new();
                o.write_all(report::human_plan_header(&header).as_bytes())?;
                Out::Human(o)
            }
        })
    };
    let mut out: Option<Out> = None;
    let mut each = |file: Option<&mut JsonPlanWriter<&mut dyn Write>>,
                    t: plan::TargetPlan|
     -> anyhow::Result<plan::TargetPlan> {
        if let Some(f) = file {
            f.target(&t)?;
        }
        let o = match &mut out {
            Some(o) => o,
            None => out.insert(open()?),
        };
        match o {
            Out::Json(j) => j.target(&t)?,
            Out::Human(o) => o.write_all(report::human_plan_target(&t).as_bytes())?,
        }
        Ok(t.handed_out())
    };
    let plan = match plan_out {
        Some(p) => {
            let mut plan = None;
            backend::snapshot::write_atomic_with(p, |w| {
                let mut file = JsonPlanWriter::begin(w, &header)?;
                plan = Some(plan::build_each(intent, opts, &mut |t| {
                    each(Some(&mut file), t)
                })?);
                file.finish()?;
                Ok(())
            })?;
            tracing::info!(path = %p.display(), "wrote plan file");
            plan.ok_or_else(|| anyhow::anyhow!("no plan was made"))?
        }
        None => plan::build_each(intent, opts, &mut |t| each(None, t))?,
    };
    match out.map_or_else(open, Ok)? {
        Out::Json(j) => {
            j.finish()?;
        }
        Out::Human(mut o) => {
            o.write_all(report::human_plan_footer(&plan).as_bytes())?;
            o.flush()?;
        }
    }
    Ok(plan.exit_code())
}

fn require_snapshots(cli: &Cli) -> anyhow::Result<()> {
    if cli.state == StateKind::Live {
        anyhow::bail!(
            "--state live: the live cloud backends are not part of this build yet; use --state snapshots (the default)"
        );
    }
    Ok(())
}

/// The snapshot root, created first with `--init`; it must exist (a typo in `--snapshots`
/// must not plan "create everything").
fn snapshot_root(cli: &Cli, init: bool) -> anyhow::Result<()> {
    if init && !cli.snapshots.exists() {
        std::fs::create_dir_all(&cli.snapshots).map_err(|e| {
            anyhow::anyhow!(
                "snapshot directory `{}`: cannot create: {e}",
                cli.snapshots.display()
            )
        })?;
        tracing::info!(path = %cli.snapshots.display(), "created the snapshot directory (--init)");
    }
    backend::snapshot::check_root(&cli.snapshots)
}

/// Take the one-writer lock of a directory this run writes snapshots into.
fn lock(cli: &Cli, dir: &std::path::Path) -> anyhow::Result<backend::lock::RootLock> {
    backend::lock::acquire(dir, std::time::Duration::from_secs(cli.lock_timeout))
}

/// What to plan, from the command line's global flags and a verb's filters.
fn plan_options(
    cli: &Cli,
    prune_unmanaged: bool,
    deployment: Option<String>,
    provider: Option<intentwall_contract::ProviderKind>,
) -> plan::PlanOptions {
    plan::PlanOptions {
        backend: backend::Backend::snapshots(cli.snapshots.clone()),
        prune_unmanaged,
        deployment,
        provider,
        keep_after: false,
    }
}

/// Run a parsed command line; returns the exit code.
pub fn run(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Validate => {
            let Some(intent) = load(cli)? else {
                return Ok(EXIT_ERROR);
            };
            let findings = intent::guardrails::check(&intent);
            for f in &findings {
                eprintln!("blocked: {f}");
            }
            let flows: usize = intent.deployments.values().map(|d| d.flows.len()).sum();
            out(&format!(
                "{}: {} deployments, {} effective flows, {} guardrail findings\n",
                cli.intents.display(),
                intent.deployments.len(),
                flows,
                findings.len()
            ))?;
            Ok(if findings.is_empty() {
                EXIT_OK
            } else {
                EXIT_BLOCKED
            })
        }
        Command::Graph {
            format,
            deployment,
            from,
        } => {
            let Some(intent) = load(cli)? else {
                return Ok(EXIT_ERROR);
            };
            if let Some(d) = deployment {
                if !intent.deployments.contains_key(d) {
                    anyhow::bail!("unknown deployment `{d}`");
                }
            }
            let g = graph::ServiceGraph::build(
                intent
                    .deployments
                    .values()
                    .filter(|d| deployment.as_ref().is_none_or(|x| x == &d.name)),
            );
            if let Some(start) = from {
                let mut text = String::new();
                let mut json = Vec::new();
                for d in g.views() {
                    let reach = d.reachable_from(start).map_err(|e| anyhow::anyhow!(e))?;
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
                    json.push(serde_json::json!({"deployment": d.deployment(), "from": start, "reachable": reach}));
                }
                match format {
                    GraphFormat::Json => out(&(serde_json::to_string_pretty(&json)? + "\n"))?,
                    _ => out(&text)?,
                }
                return Ok(EXIT_OK);
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
            };
            out(&text)?;
            Ok(EXIT_OK)
        }
        Command::Plan {
            out: plan_out,
            emit,
            format,
            prune_unmanaged,
            deployment,
            provider,
            init,
        } => {
            require_snapshots(cli)?;
            let Some(intent) = load(cli)? else {
                return Ok(EXIT_ERROR);
            };
            snapshot_root(cli, *init)?;
            // `--emit` writes snapshots, so it holds the emit directory's lock; taken before
            // planning when the directory exists, so emitting into the snapshot root reads and
            // writes under one lock (a missing one is made only once planning has succeeded)
            let mut emit_lock = match emit {
                Some(dir) if dir.is_dir() => Some(lock(cli, dir)?),
                _ => None,
            };
            let opts = plan::PlanOptions {
                keep_after: emit.is_some(),
                ..plan_options(cli, *prune_unmanaged, deployment.clone(), *provider)
            };
            if emit.is_none() && matches!(format, report::Format::Json | report::Format::Human) {
                return plan_streamed(&intent, &opts, *format, plan_out.as_deref());
            }
            let plan = plan::build(&intent, &opts)?;
            if let Some(p) = plan_out {
                let text = serde_json::to_string_pretty(&plan)? + "\n";
                backend::snapshot::write_atomic(p, text.as_bytes())?;
                tracing::info!(path = %p.display(), "wrote plan file");
            }
            if let Some(dir) = emit {
                if emit_lock.is_none() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        anyhow::anyhow!("{}: cannot create the emit directory: {e}", dir.display())
                    })?;
                    emit_lock = Some(lock(cli, dir)?);
                }
                for p in plan::emit(&plan, dir)? {
                    tracing::info!(path = %p.display(), "emitted desired state");
                }
            }
            drop(emit_lock);
            if *format == report::Format::Json {
                // streamed: at estate scale the document is hundreds of megabytes
                out_json(&plan)?;
            } else {
                out(&report::render_plan(&plan, *format))?;
            }
            Ok(plan.exit_code())
        }
        Command::Simulate {
            format,
            deployment,
            provider,
            flows,
            flow_format,
        } => {
            require_snapshots(cli)?;
            let Some(intent) = load(cli)? else {
                return Ok(EXIT_ERROR);
            };
            // open the log first: a missing file fails before any planning; the log is then
            // read as it is replayed, so its size never has to fit in memory
            let log = match flows {
                Some(path) => {
                    let cannot = |e: std::io::Error| {
                        anyhow::anyhow!("{}: cannot read flow log: {e}", path.display())
                    };
                    let file = std::fs::File::open(path).map_err(cannot)?;
                    let fmt = match flow_format {
                        Some(f) => *f,
                        None => simulate::flowlog::FlowFormat::infer_file(path).map_err(cannot)?,
                    };
                    Some((path.display().to_string(), fmt, file))
                }
                None => None,
            };
            let mut plan = plan::build(
                &intent,
                &plan::PlanOptions {
                    keep_after: true, // flow-log replay judges the state after apply
                    ..plan_options(cli, false, deployment.clone(), *provider)
                },
            )?;
            let replay = match log {
                Some((name, fmt, file)) => {
                    let reader = std::io::BufReader::with_capacity(1 << 16, file);
                    let r = simulate::flowlog::replay_reader(&intent, &plan, &name, fmt, reader)?;
                    tracing::info!(
                        file = %name, records = r.records, checked = r.checked,
                        mismatches = r.mismatches, millis = r.millis, "replayed flow log"
                    );
                    simulate::flowlog::merge_into(&mut plan, &r);
                    Some(r)
                }
                None => None,
            };
            let text = match (format, &replay) {
                (report::Format::Human, r) => {
                    let mut t = report::human_simulation(&plan);
                    if let Some(r) = r {
                        t.push_str(&report::human_replay(r));
                    }
                    t
                }
                (report::Format::Json, Some(r)) => {
                    // streamed, as for `plan`: the plan with the replay beside its fields
                    #[derive(serde::Serialize)]
                    struct WithReplay<'a> {
                        #[serde(flatten)]
                        plan: &'a plan::Plan,
                        replay: &'a simulate::flowlog::Replay,
                    }
                    out_json(&WithReplay {
                        plan: &plan,
                        replay: r,
                    })?;
                    String::new()
                }
                (report::Format::Markdown, Some(r)) => {
                    report::render_plan(&plan, report::Format::Markdown)
                        + &report::markdown_replay(r)
                }
                (f, _) => report::render_plan(&plan, *f),
            };
            if !text.is_empty() {
                out(&text)?;
            }
            Ok(if plan.blocked() {
                EXIT_BLOCKED
            } else {
                EXIT_OK
            })
        }
        Command::Permissions { cloud } => {
            let Some(intent) = load(cli)? else {
                return Ok(EXIT_ERROR);
            };
            out(&permissions::render(&intent, *cloud)?)?;
            Ok(EXIT_OK)
        }
        Command::Apply {
            plan: plan_file,
            auto_approve,
            max_deletes,
            force,
            prune_unmanaged,
            init,
        } => {
            require_snapshots(cli)?;
            if plan_file.is_none() && !*auto_approve {
                anyhow::bail!(
                    "apply needs a reviewed plan file (`intentwall plan --out plan.json`, then `intentwall apply plan.json`) or --auto-approve"
                );
            }
            if plan_file.is_some() && *prune_unmanaged {
                anyhow::bail!("--prune-unmanaged is decided when planning; pass it to `plan`, not to `apply plan.json`");
            }
            let Some(intent) = load(cli)? else {
                return Ok(EXIT_ERROR);
            };
            snapshot_root(cli, *init)?;
            // one writer per root: held from before planning (or re-deriving) to the last
            // write, released when this run ends, however it ends
            let _lock = lock(cli, &cli.snapshots)?;
            let opts = apply::ApplyOptions {
                backend: backend::Backend::snapshots(cli.snapshots.clone()),
                max_deletes: *max_deletes,
                force: *force,
            };
            let report = match plan_file {
                Some(p) => apply::apply_recorded(&plan::Plan::read(p)?, &intent, &opts)?,
                None => {
                    let plan =
                        plan::build(&intent, &plan_options(cli, *prune_unmanaged, None, None))?;
                    eprint!("{}", report::human_plan(&plan));
                    apply::apply(&plan, &intent, &opts)?
                }
            };
            out(&report::human_apply(&report))?;
            Ok(report.exit_code())
        }
        Command::Snapshot { .. } => {
            if cli.state != StateKind::Live {
                anyhow::bail!("`snapshot` records live state: run it with --state live");
            }
            require_snapshots(cli)?;
            Ok(EXIT_OK)
        }
    }
}
