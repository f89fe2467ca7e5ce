//! The snapshot backend (the embedded default): `snapshots/<deployment>/<provider>.json`, each
//! in the cloud CLI's own JSON shape (DESIGN.md §3), so users can capture state without us.
//!
//! Reads never guess: a missing file is a new, empty target (and the plan says so); a file
//! that cannot be read or parsed is an error naming the file and position. Writes are atomic
//! (temporary file in the same directory, fsync, rename), so a crash never leaves half a file.

use intentwall_contract::{DeploymentIntent, NativeState, Provider, ProviderKind};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What was observed for one target.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Parsed state (empty when the file is missing).
    pub state: NativeState,
    /// sha256 of the file's bytes, or `absent`: what a plan file records to detect staleness.
    pub fingerprint: String,
    /// False when no snapshot file exists (a new region).
    pub existed: bool,
    /// The file this came from.
    pub path: PathBuf,
}

/// Path of a target's snapshot file, `dir/<deployment>/<provider>.json`. The deployment
/// name may come from a plan file: a name that would leave `dir` is an error.
pub fn path(dir: &Path, deployment: &str, kind: ProviderKind) -> anyhow::Result<PathBuf> {
    crate::paths::join_inside(dir, &[deployment, &format!("{kind}.json")])
}

/// Fingerprint of a file's bytes.
pub fn fingerprint(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Read and parse one target's snapshot.
pub fn read(
    dir: &Path,
    provider: &dyn Provider,
    intent: &DeploymentIntent,
) -> anyhow::Result<Observed> {
    let p = path(dir, &intent.deployment, provider.kind())?;
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Observed {
                state: NativeState::default(),
                fingerprint: "absent".into(),
                existed: false,
                path: p,
            })
        }
        Err(e) => anyhow::bail!("{}: cannot read snapshot: {e}", p.display()),
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: snapshot is not UTF-8: {e}", p.display()))?;
    let state = provider
        .parse_snapshot(text, intent)
        .map_err(|e| match e.line {
            Some(l) => anyhow::anyhow!(
                "{}:{}:{}: {}",
                p.display(),
                l,
                e.column.unwrap_or(1),
                e.message
            ),
            None => anyhow::anyhow!("{}: {}", p.display(), e.message),
        })?;
    Ok(Observed {
        state,
        fingerprint: fingerprint(&bytes),
        existed: true,
        path: p,
    })
}

/// Write a file atomically: a temporary sibling, flushed and synced, then renamed over.
pub fn write_atomic(p: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = p.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot create directory: {e}", dir.display()))?;
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, p)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("{}: cannot write: {e}", p.display());
    }
    Ok(())
}
