//! `snapshot`: record live state into snapshot files, in each cloud CLI's own shape, so a live
//! estate can be reviewed offline and the offline mode compared with the live one (a plan
//! against the recorded files equals a plan against the cloud at that moment).

use crate::cli::{Cli, SnapshotArgs, StateKind};
use crate::error::Error;
use crate::exit::ExitStatus;

/// Read every selected target from its cloud and write `<snapshots>/<deployment>/<cloud>.json`
/// atomically, under the snapshot root's lock (created if missing: recording is what the
/// directory is for). A target that cannot be read is reported and the others still written;
/// the run then exits 1.
pub fn run(cli: &Cli, args: &SnapshotArgs) -> Result<ExitStatus, Error> {
    if cli.state != StateKind::Live {
        return Err(Error::usage(
            "`snapshot` records live state: run it with --state live",
        ));
    }
    super::require_state(cli)?;
    record(cli, args)
}

#[cfg(not(feature = "live"))]
fn record(_cli: &Cli, _args: &SnapshotArgs) -> Result<ExitStatus, Error> {
    // require_state refused already; kept so the verb reads the same in every build
    Err(Error::Internal("snapshot without the live backends"))
}

#[cfg(feature = "live")]
fn record(cli: &Cli, args: &SnapshotArgs) -> Result<ExitStatus, Error> {
    use crate::backend::{self, live::Live, Target};
    let provider = match &args.provider {
        Some(p) => Some(intentwall_contract::ProviderKind::parse(p).ok_or_else(|| {
            Error::usage(format!(
                "unknown cloud `{p}` (expected {})",
                backend::cloud_names()
            ))
        })?),
        None => None,
    };
    let Some(intent) = super::load(cli)? else {
        return Ok(ExitStatus::Error);
    };
    if let Some(d) = &args.deployment {
        if !intent.deployments.contains_key(d) {
            return Err(Error::UnknownDeployment(d.clone()));
        }
    }
    // the same selection as plan: --deployment, --provider and --shard
    let select = super::plan_options(cli, false, args.deployment.clone(), provider);
    let mut targets = Vec::new();
    for dep in intent.deployments.values() {
        if !select.selects(&dep.name) {
            continue;
        }
        for &kind in dep.clouds.keys() {
            if provider.is_some_and(|p| p != kind) {
                continue;
            }
            let di = crate::graph::resolve(dep, kind).ok_or_else(|| Error::NoPlacement {
                deployment: dep.name.clone(),
                provider: kind,
            })?;
            targets.push((Target::of(&di, kind), di));
        }
    }
    let root = &cli.snapshots;
    std::fs::create_dir_all(root)
        .map_err(|e| Error::file(root, "cannot create the snapshot directory", e))?;
    let _lock = super::lock(cli, root)?;
    let live = Live::new();
    let mut failed = 0;
    for (target, di) in &targets {
        let read = backend::block_on(live.document(target, di));
        let written = read.and_then(|o| {
            let path = backend::snapshot::path(root, &target.deployment, target.provider)?;
            backend::snapshot::write_inside(root, &path, o.document.as_bytes())?;
            Ok(path)
        });
        match written {
            Ok(path) => {
                tracing::info!(
                    target: "audit",
                    target = %target,
                    call = "snapshot write",
                    path = %path.display(),
                    "recorded live state"
                );
                crate::output::out(&format!("{}\n", path.display()))?;
            }
            Err(e) => {
                failed += 1;
                tracing::error!(target = %target, "cannot record: {e}");
                eprintln!("error: {target}: {e}");
            }
        }
    }
    Ok(if failed > 0 {
        ExitStatus::Error
    } else {
        ExitStatus::Ok
    })
}
