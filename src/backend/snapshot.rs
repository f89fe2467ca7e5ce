//! The snapshot backend (the embedded default): `snapshots/<deployment>/<provider>.json`, each
//! in the cloud CLI's own JSON shape, so users can capture state without us.
//!
//! Reads never guess: the snapshot root must exist (a typo in `--snapshots` must not plan
//! "create everything"); inside it a missing file is a new, empty target (and the plan says
//! so); a file that cannot be read or parsed, or is not a regular file, is an error naming the
//! file and position.
//!
//! Writes stay inside their root (docs/safety.md): the temporary file is created exclusively
//! (random name, O_EXCL) in the target's own directory, so a planted symlink is never
//! followed; no directory between the root and the target, nor the target itself, may be a
//! symlink; the file's mode is kept; fsync, then rename, so a crash never leaves half a file.
//! A killed run can leave its temporary file behind; the next run that takes the root's lock
//! removes it ([`remove_leftovers`]).

use super::{fingerprint, Executed, Observed};
use crate::diff::Change;
use crate::error::{Error, RootProblem};
use intentwall_contract::{DeploymentIntent, NativeState, ProviderKind};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Name prefix of every temporary file intentwall writes. Under the root's lock no other
/// intentwall writer is running, so a file with this prefix is a leftover of a killed run.
pub const TEMP_PREFIX: &str = ".intentwall-tmp-";

/// The snapshot backend: one file per target under a root directory.
#[derive(Debug, Clone)]
pub struct Snapshots {
    root: PathBuf,
}

impl Snapshots {
    /// The files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Snapshots {
        Snapshots { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// One target's snapshot, parsed ([`read`]).
    pub fn observe(
        &self,
        kind: ProviderKind,
        intent: &DeploymentIntent,
    ) -> Result<Observed, Error> {
        let observed = read(&self.root, kind, intent)?;
        tracing::debug!(
            path = %observed.source.display(), existed = observed.existed,
            objects = observed.state.objects.len(), fingerprint = %observed.fingerprint,
            "read snapshot"
        );
        Ok(observed)
    }

    /// Apply a change set to one target's file: read it again, require the planned
    /// fingerprint, write the state after the changes (rendered in the cloud CLI's shape)
    /// atomically inside the root.
    pub fn execute(
        &self,
        kind: ProviderKind,
        intent: &DeploymentIntent,
        expected: &str,
        changes: &[Change],
    ) -> Result<Executed, Error> {
        let observed = read(&self.root, kind, intent)?;
        if observed.fingerprint != expected {
            return Err(super::changed_under_us(
                &observed.source.display().to_string(),
                expected,
                &observed.fingerprint,
            ));
        }
        let after = crate::diff::apply_changes(&observed.state, changes);
        let text = super::format(kind)?.render_snapshot(&after);
        write_inside(&self.root, &observed.source, text.as_bytes())?;
        // the one mutating call of this backend: a whole file, atomically
        tracing::info!(
            target: "audit",
            deployment = %intent.deployment, provider = %kind,
            path = %observed.source.display(), changes = changes.len(),
            before = %expected, after = %fingerprint(&after),
            "snapshot written"
        );
        Ok(Executed {
            writes: changes.len(),
            meant: after,
        })
    }
}

/// Path of a target's snapshot file, `dir/<deployment>/<provider>.json`. The deployment
/// name may come from a plan file: a name that would leave `dir` is an error.
pub fn path(dir: &Path, deployment: &str, kind: ProviderKind) -> Result<PathBuf, Error> {
    crate::paths::join_inside(dir, &[deployment, &format!("{kind}.json")])
}

/// Read and parse one target's snapshot.
pub fn read(dir: &Path, kind: ProviderKind, intent: &DeploymentIntent) -> Result<Observed, Error> {
    let snapshot_format = super::format(kind)?;
    let p = path(dir, &intent.deployment, kind)?;
    let Some(bytes) = read_bytes(&p)? else {
        return Ok(Observed {
            state: NativeState::default(),
            fingerprint: "absent".into(),
            existed: false,
            source: p,
        });
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| Error::Snapshot {
        path: p.clone(),
        line: None,
        column: None,
        message: format!("snapshot is not UTF-8: {e}"),
    })?;
    let state = snapshot_format
        .parse_snapshot(text, intent)
        .map_err(|e| Error::Snapshot {
            path: p.clone(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
    Ok(Observed {
        fingerprint: fingerprint(&state),
        state,
        existed: true,
        source: p,
    })
}

/// The snapshot root must exist: a `--snapshots` typo must be an error, not a plan that
/// creates every target from nothing. `plan --init` / `apply --init` create it on purpose.
pub fn check_root(dir: &Path) -> Result<(), Error> {
    let problem = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => RootProblem::NotADirectory,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RootProblem::Missing,
        Err(e) => RootProblem::Io(e),
    };
    Err(Error::SnapshotRoot {
        path: dir.to_path_buf(),
        problem,
    })
}

/// A snapshot file's bytes, or `None` when there is none (a new target; a dangling symlink
/// counts as none, and a write to it is refused later). Opened non-blocking and required to
/// be a regular file, so a FIFO or device in its place can neither hang a run nor feed it.
pub fn read_bytes(p: &Path) -> Result<Option<Vec<u8>>, Error> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let mut f = match opts.open(p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file(p, "cannot read snapshot", e)),
    };
    let meta = f
        .metadata()
        .map_err(|e| Error::file(p, "cannot read snapshot", e))?;
    if !meta.is_file() {
        return Err(Error::Snapshot {
            path: p.to_path_buf(),
            line: None,
            column: None,
            message: "cannot read snapshot: not a regular file".into(),
        });
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(|e| Error::file(p, "cannot read snapshot", e))?;
    Ok(Some(bytes))
}

/// Write a file atomically where the caller named it (a plan file): [`write_inside`] its own
/// directory, which is created if missing (the caller named it), so the same rules hold
/// (exclusive temporary file, no symlink at the file, mode kept).
pub fn write_atomic(p: &Path, contents: &[u8]) -> Result<(), Error> {
    write_atomic_with(p, |w| Ok(w.write_all(contents)?))
}

/// [`write_atomic`] with the contents written by `write` as they are made (a plan file
/// streamed target by target); when `write` fails, nothing is left behind.
pub fn write_atomic_with(
    p: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
) -> Result<(), Error> {
    match p.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::file(dir, "cannot create directory", e))?;
            write_inside_with(dir, p, write)
        }
        _ => write_inside_with(Path::new("."), &Path::new(".").join(p), write),
    }
}

/// Write `target`, a path under `root` (the snapshot or emit directory), atomically and
/// without ever leaving `root`:
/// - every directory between `root` and the target must be a real directory, never a
///   symlink (checked component by component with `symlink_metadata`); a missing one is
///   made with `create_dir`, one level at a time, so nothing is created through a link;
/// - the target must be a regular file or absent: a symlink there is refused, since even
///   though `rename` would replace the link itself, someone planted it to redirect us;
/// - the temporary file is created exclusively (O_EXCL, random name with [`TEMP_PREFIX`]) in
///   the target's directory, so an existing path (a planted symlink) is never opened;
/// - an existing file's permission bits are copied onto the new one (a 0600 snapshot stays
///   0600); a new file gets 0666 less the umask, as `File::create` would (0644 under the usual
///   022). Ownership is not copied (it needs privileges).
///
/// `root` itself is the caller's choice and may be a symlink. A path component that is not a
/// plain name (`..`, an absolute path) is refused.
pub fn write_inside(root: &Path, target: &Path, contents: &[u8]) -> Result<(), Error> {
    write_inside_with(root, target, |w| Ok(w.write_all(contents)?))
}

/// [`write_inside`] with the contents written by `write`; its error is returned as it is and
/// the temporary file removed.
pub fn write_inside_with(
    root: &Path,
    target: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
) -> Result<(), Error> {
    let refuse = |why: String| Error::WriteRefused {
        path: target.to_path_buf(),
        why,
    };
    let rel = target
        .strip_prefix(root)
        .map_err(|_| refuse(format!("not inside `{}`", root.display())))?;
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => names.push(n),
            Component::CurDir => {}
            _ => return Err(refuse(format!("leaves `{}`", root.display()))),
        }
    }
    let Some((file_name, dirs)) = names.split_last() else {
        return Err(Error::NoFileName {
            path: target.to_path_buf(),
            root: root.to_path_buf(),
        });
    };
    let mut dir = root.to_path_buf();
    for d in dirs {
        dir.push(d);
        real_dir(&dir, root)?;
    }
    let kept = match std::fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_symlink() => return Err(refuse(through_symlink(root))),
        Ok(m) if !m.is_file() => return Err(refuse("not a regular file".into())),
        Ok(m) => Some(m.permissions()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(refuse(e.to_string())),
    };
    let mut builder = tempfile::Builder::new();
    let suffix = format!("-{}", file_name.to_string_lossy());
    builder.prefix(TEMP_PREFIX).suffix(&suffix);
    #[cfg(unix)]
    let new_file_mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o666)
    };
    #[cfg(unix)]
    builder.permissions(new_file_mode);
    let fail = |e: std::io::Error| Error::file(target, "cannot write", e);
    let mut tmp = builder.tempfile_in(&dir).map_err(fail)?;
    if let Some(perm) = kept {
        tmp.as_file().set_permissions(perm).map_err(fail)?;
    }
    {
        let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut buffered).map_err(|e| match e {
            Error::Io(io) => fail(io),
            e => e,
        })?;
        buffered.flush().map_err(fail)?;
    }
    tmp.as_file().sync_all().map_err(fail)?;
    // on failure the temporary file is removed when `tmp` (inside the error) drops
    tmp.persist(target).map_err(|e| fail(e.error))?;
    // the rename itself is durable once the directory is synced; best effort
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Require `dir` to be a real directory (not a symlink), creating it (one level) if missing.
fn real_dir(dir: &Path, root: &Path) -> Result<(), Error> {
    let refuse = |why: String| Error::WriteRefused {
        path: dir.to_path_buf(),
        why,
    };
    let check = |m: std::fs::Metadata| -> Result<(), Error> {
        if m.file_type().is_symlink() {
            return Err(refuse(through_symlink(root)));
        }
        if !m.is_dir() {
            return Err(refuse("not a directory".into()));
        }
        Ok(())
    };
    let at = |cause: std::io::Error| Error::Path {
        path: dir.to_path_buf(),
        cause,
    };
    match std::fs::symlink_metadata(dir) {
        Ok(m) => check(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(dir) {
            Ok(()) => Ok(()),
            // made by someone else meanwhile: judge what is there now
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                check(std::fs::symlink_metadata(dir).map_err(at)?)
            }
            Err(e) => Err(Error::file(dir, "cannot create directory", e)),
        },
        Err(e) => Err(at(e)),
    }
}

/// Why a symlink on the way to a write is refused.
fn through_symlink(root: &Path) -> String {
    format!(
        "is a symbolic link; intentwall never writes through one (it could lead out of `{}`)",
        root.display()
    )
}

/// Remove the temporary files a killed run left in `root` and in its directories one level
/// down (where snapshots live). Only call with the root's lock held: then no other intentwall
/// writer is running and every [`TEMP_PREFIX`] file is a leftover. Symlinks are not followed
/// (a planted link with the prefix is removed, not its target). Returns the paths removed.
pub fn remove_leftovers(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(e.path());
            }
        }
    }
    let mut removed = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let ours = e.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
            if ours && e.file_type().is_ok_and(|t| !t.is_dir()) {
                let p = e.path();
                match std::fs::remove_file(&p) {
                    Ok(()) => {
                        tracing::warn!(path = %p.display(), "removed a temporary file left by an interrupted run");
                        removed.push(p);
                    }
                    Err(err) => {
                        tracing::warn!(path = %p.display(), error = %err, "cannot remove a temporary file left by an interrupted run")
                    }
                }
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_make_missing_directories_and_refuse_paths_leaving_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let target = root.join("a/b/aws.json");
        write_inside(&root, &target, b"[]").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"[]");
        for bad in [
            root.join("../x.json"),
            d.path().join("x.json"),
            root.clone(),
        ] {
            assert!(
                write_inside(&root, &bad, b"[]").is_err(),
                "{}",
                bad.display()
            );
        }
        assert!(!d.path().join("x.json").exists());
    }

    #[test]
    fn a_plan_file_in_the_working_directory_or_a_new_one_is_written() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new/dir/plan.json");
        write_atomic(&p, b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        write_atomic(&p, b"{ }").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{ }");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["plan.json"], "no temporary file left");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_place_of_a_snapshot_is_an_error_not_a_hang() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("aws.json");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_bytes(&p).unwrap_err();
        assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
        assert!(read_bytes(&d.path().join("none.json")).unwrap().is_none());
    }
}
