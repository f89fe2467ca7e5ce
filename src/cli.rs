//! The command line (clap derive): global flags and one subcommand per verb.

use crate::report::Format;
use crate::simulate::flowlog::FlowFormat;
use clap::{Args, Parser, Subcommand, ValueEnum};
use intentwall_contract::ProviderKind;
use std::path::PathBuf;

/// Keep cloud firewalls in line with one version-controlled statement of security intent.
#[derive(Debug, Parser)]
#[command(name = "intentwall", version, about)]
pub struct Cli {
    /// Intent repository.
    #[arg(long, global = true, default_value = "intents")]
    pub intents: PathBuf,
    /// Where state comes from and apply goes to.
    #[arg(long, global = true, value_enum, default_value_t = StateKind::Snapshots)]
    pub state: StateKind,
    /// Snapshot directory (state = snapshots).
    #[arg(long, global = true, default_value = "snapshots")]
    pub snapshots: PathBuf,
    /// Seconds to wait for another run's lock on the snapshot (or emit) directory before
    /// failing; 0 fails at once.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10)]
    pub lock_timeout: u64,
    /// Today's date for exception expiry (YYYY-MM-DD); defaults to the system clock (UTC).
    #[arg(long, global = true, env = "INTENTWALL_TODAY", hide = true)]
    pub today: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Handle only this shard of the deployments, INDEX/COUNT (0-based: 0/3, 1/3, 2/3), by a
    /// stable hash of each deployment's name. Without it, a Kubernetes Indexed Job's
    /// JOB_COMPLETION_INDEX is used with INTENTWALL_SHARD_COUNT. See docs/deploy.md.
    #[arg(long, global = true, env = "INTENTWALL_SHARD", value_name = "INDEX/COUNT",
          value_parser = crate::shard::Shard::parse)]
    pub shard: Option<crate::shard::Shard>,
    /// More logs (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// State backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateKind {
    /// Recorded snapshot files (the default).
    Snapshots,
    /// The real clouds through their SDKs.
    Live,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for CronJobs and log pipelines).
    Json,
}

/// Graph picture formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
    /// Nodes and edges as JSON.
    Json,
    /// SVG, laid out by intentwall itself (no Graphviz needed).
    Svg,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, resolve and check guardrails; no state needed.
    Validate,
    /// Draw the service graph, or list the blast radius of a node with --from.
    Graph(GraphArgs),
    /// Show what would change, with the simulation verdict and findings.
    Plan(PlanArgs),
    /// Prove that every cloud's native rules give the intent's verdicts.
    Simulate(SimulateArgs),
    /// Apply a plan file, or plan and apply with --auto-approve.
    Apply(ApplyArgs),
    /// Print the least-privilege policy the job needs on a cloud, scoped to the intents'
    /// placements (AWS IAM policy JSON, Azure custom role JSON, GCP custom role YAML).
    Permissions(PermissionsArgs),
    /// Record live state into snapshot files (needs --state live).
    Snapshot(SnapshotArgs),
    /// Create or update, in every account of the intents, the role the job assumes, with the
    /// least privilege of `permissions` (AWS; needs the `live` build).
    Bootstrap(BootstrapArgs),
    /// Print a shell completion script to stdout (bash, zsh, fish, elvish, powershell).
    Completions(crate::commands::completions::CompletionsArgs),
    /// Print the man page (roff) to stdout: `intentwall man > intentwall.1`.
    Man,
    /// Judge every target's state as it is now against the intent: compliant, or drift
    /// narrower (outage) / wider (exposure), with the packets that differ.
    Audit(AuditArgs),
}

// The verbs' flags, one struct each so every verb's module takes its own. Plain comments,
// not doc comments: clap would take a struct's doc comment as the verb's help text.

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
    /// Only this deployment.
    #[arg(long)]
    pub deployment: Option<String>,
    /// List every group reachable from this group or network, and over which flows.
    #[arg(long)]
    pub from: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Write the plan file (for `apply plan.json`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write each target's state after apply, in the snapshot format, under DIR.
    #[arg(long, value_name = "DIR")]
    pub emit: Option<PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Plan deletion of unmanaged rules in managed targets.
    #[arg(long)]
    pub prune_unmanaged: bool,
    /// Only this deployment.
    #[arg(long)]
    pub deployment: Option<String>,
    /// Only this cloud (aws, azure, gcp).
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<ProviderKind>,
    /// Create the snapshot directory if it does not exist (else that is an error).
    #[arg(long)]
    pub init: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Only this deployment.
    #[arg(long)]
    pub deployment: Option<String>,
    /// Only this cloud (aws, azure, gcp).
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<ProviderKind>,
    /// Replay a flow log: every record must get the intent's verdict from the native rules.
    #[arg(long, value_name = "FILE")]
    pub flows: Option<PathBuf>,
    /// Format of --flows; default from the extension (.csv; .json/.jsonl: Azure or GCP by
    /// content; else AWS VPC text).
    #[arg(long, value_enum, requires = "flows")]
    pub flow_format: Option<FlowFormat>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file from `plan --out`.
    pub plan: Option<PathBuf>,
    /// Apply without a plan file.
    #[arg(long)]
    pub auto_approve: bool,
    /// Refuse a target that deletes more objects than this.
    #[arg(long, default_value_t = 50)]
    pub max_deletes: usize,
    /// Override the blast-radius guard.
    #[arg(long)]
    pub force: bool,
    /// Targets written at the same time (1: one after another). Each target is still written
    /// by one writer, in its own order; only independent targets overlap.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,
    /// Before writing, check with the cloud (AWS: IAM SimulatePrincipalPolicy; Azure: the
    /// caller's permissions at each resource group; GCP: Cloud Resource Manager
    /// testIamPermissions) that the identity may make every call the changes need; refuse the
    /// apply if not, or if the cloud cannot be asked.
    #[arg(long)]
    pub preflight: bool,
    /// Delete unmanaged rules in managed targets (when planning here).
    #[arg(long)]
    pub prune_unmanaged: bool,
    /// Create the snapshot directory if it does not exist (else that is an error).
    #[arg(long)]
    pub init: bool,
}

#[derive(Debug, Args)]
pub struct PermissionsArgs {
    /// The cloud (aws, azure, gcp).
    #[arg(value_parser = parse_provider)]
    pub cloud: ProviderKind,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Only this deployment.
    #[arg(long)]
    pub deployment: Option<String>,
    /// Only this cloud.
    #[arg(long)]
    pub provider: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Output format on stdout (html: a self-contained evidence page).
    #[arg(long, value_enum, default_value_t = crate::audit::Format::Human)]
    pub format: crate::audit::Format,
    /// Only this deployment.
    #[arg(long)]
    pub deployment: Option<String>,
    /// Only this cloud (aws, azure, gcp).
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<ProviderKind>,
    /// The time the report states (RFC 3339); defaults to the system clock (UTC).
    #[arg(long, env = "INTENTWALL_NOW", hide = true)]
    pub now: Option<String>,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The cloud (aws).
    #[arg(value_parser = parse_provider)]
    pub cloud: ProviderKind,
    /// The principal allowed to assume the role: the job's own role or user ARN (for a
    /// CronJob, the IRSA role of its ServiceAccount).
    #[arg(long, value_name = "ARN")]
    pub trust: String,
    /// Act in each account through this role there (e.g. OrganizationAccountAccessRole);
    /// without it the caller's own identity must be in the account.
    #[arg(long, value_name = "NAME")]
    pub via_role: Option<String>,
    /// Show what would change; write nothing (exit 2 when something would).
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_provider(s: &str) -> Result<ProviderKind, String> {
    ProviderKind::parse(s)
        .ok_or_else(|| format!("unknown cloud `{s}` (expected aws, azure or gcp)"))
}
