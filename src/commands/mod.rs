//! The verbs, one module each: read the command line's flags, run the pipeline's stages
//! (load → plan → simulate / apply) and render the result to stdout. Each returns how the run
//! ended; the binary turns that into the exit code.
//!
//! What more than one verb needs lives here: loading the intents (diagnostics to stderr),
//! today's date for exception expiry, the snapshot root check and its one-writer lock.

pub mod apply;
pub mod audit;
pub mod bootstrap;
pub mod completions;
pub mod graph;
pub mod man;
pub mod permissions;
pub mod plan;
pub mod simulate;
pub mod snapshot;
pub mod validate;

use crate::cli::{Cli, StateKind};
use crate::error::{Error, RootProblem};
use crate::{backend, intent};

/// Today's date for exception expiry: `--today` (so tests and replays are reproducible), else
/// the system clock in UTC.
fn today(cli: &Cli) -> Result<time::Date, Error> {
    match &cli.today {
        Some(s) => {
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(s, &fmt).map_err(|e| {
                Error::usage(format!(
                    "--today / INTENTWALL_TODAY `{s}` is not YYYY-MM-DD: {e}"
                ))
            })
        }
        None => Ok(time::OffsetDateTime::now_utc().date()),
    }
}

/// Load the intents; on errors print every diagnostic and return `None` (the verb then ends
/// with [`crate::ExitStatus::Error`]: the diagnostics are the whole message).
pub(crate) fn load(cli: &Cli) -> Result<Option<intent::Intent>, Error> {
    let opts = intent::LoadOptions { today: today(cli)? };
    match intent::load(&cli.intents, &opts) {
        Ok(loaded) => {
            if !loaded.warnings.is_empty() {
                crate::logging::human(crate::logging::Level::Warn, &loaded.warnings.to_string());
            }
            Ok(Some(loaded.intent))
        }
        Err(diags) => {
            crate::logging::human(crate::logging::Level::Error, &diags.to_string());
            Ok(None)
        }
    }
}

/// The backend `--state` selects must be in this binary: `--state live` in a build without
/// the `live` feature fails loudly rather than plan against files the user did not mean.
pub(crate) fn require_state(cli: &Cli) -> Result<(), Error> {
    if cli.state == StateKind::Live && !cfg!(feature = "live") {
        return Err(Error::usage(
            "--state live: this intentwall was built without the live backends; rebuild with \
             `cargo build --release --features live` (the container image has them), or use \
             --state snapshots (the default)",
        ));
    }
    Ok(())
}

/// The backend `--state` selects ([`require_state`] checked first).
pub(crate) fn backend_of(cli: &Cli) -> backend::Backend {
    match cli.state {
        #[cfg(feature = "live")]
        StateKind::Live => backend::Backend::Live(backend::live::Live::new()),
        _ => backend::Backend::snapshots(cli.snapshots.clone()),
    }
}

/// The snapshot root, created first with `--init`; it must exist (a typo in `--snapshots`
/// must not plan "create everything"). Nothing to check for the live clouds.
pub(crate) fn snapshot_root(cli: &Cli, init: bool) -> Result<(), Error> {
    if cli.state == StateKind::Live {
        return Ok(());
    }
    if init && !cli.snapshots.exists() {
        std::fs::create_dir_all(&cli.snapshots).map_err(|e| Error::SnapshotRoot {
            path: cli.snapshots.clone(),
            problem: RootProblem::CannotCreate(e),
        })?;
        tracing::info!(path = %cli.snapshots.display(), "created the snapshot directory (--init)");
    }
    backend::snapshot::check_root(&cli.snapshots)
}

/// The one-writer lock for apply: the snapshot root's; none for the live clouds, where one
/// writer per target is the scheduler's to ensure (one job per shard, never two at once) and
/// the fingerprint re-check right before each write catches any other writer.
pub(crate) fn state_lock(cli: &Cli) -> Result<Option<backend::lock::RootLock>, Error> {
    match cli.state {
        StateKind::Live => Ok(None),
        StateKind::Snapshots => lock(cli, &cli.snapshots).map(Some),
    }
}

/// Take the one-writer lock of a directory this run writes snapshots into.
pub(crate) fn lock(cli: &Cli, dir: &std::path::Path) -> Result<backend::lock::RootLock, Error> {
    backend::lock::acquire(dir, std::time::Duration::from_secs(cli.lock_timeout))
}

/// What to plan, from the command line's global flags and a verb's filters.
pub(crate) fn plan_options(
    cli: &Cli,
    prune_unmanaged: bool,
    deployment: Option<String>,
    provider: Option<intentwall_contract::ProviderKind>,
) -> crate::plan::PlanOptions {
    crate::plan::PlanOptions {
        backend: backend_of(cli),
        prune_unmanaged,
        deployment,
        provider,
        shard: cli.shard,
        keep_after: false,
    }
}
