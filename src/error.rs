//! The library's errors: one variant per thing that can fail, each carrying what names it
//! (the file, the target, the flag), so a caller can branch on what happened and the binary
//! can print one line a user can act on.
//!
//! Every message is the CLI's text on stderr (`error: <message>`) and part of its contract:
//! tests and users' scripts match on them. A variant that wraps an underlying error (an
//! [`std::io::Error`]) puts it in its message and does not also report it as
//! [`std::error::Error::source`], so printing the chain (as the binary does) never says it
//! twice. The transparent variants ([`Error::Io`], [`Error::Json`], [`Error::FlowLog`]) are
//! the underlying error itself, chain included.

use intentwall_contract::flowlog::ParseError;
use intentwall_contract::ProviderKind;
use std::path::PathBuf;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flag or combination of flags that cannot work (`--state live`, `apply` without a
    /// plan file or `--auto-approve`, a malformed `--today`).
    #[error("{0}")]
    Usage(String),

    /// An I/O error with nothing more to name (writing stdout).
    #[error(transparent)]
    Io(#[from] std::io::Error),

    /// Serialising a document (to stdout or a plan file) failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),

    /// A file or directory operation failed: `path: doing: cause` (`doing` is
    /// `cannot read plan`, `cannot create directory`, ...).
    #[error("{}: {doing}: {cause}", path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, in words.
        doing: &'static str,
        /// Why it failed.
        cause: std::io::Error,
    },

    /// Inspecting a path failed for a reason with no better words than the OS's.
    #[error("{}: {cause}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// Why it failed.
        cause: std::io::Error,
    },

    /// The snapshot root (`--snapshots`) is missing, not a directory, or unusable.
    #[error("snapshot directory `{}`{problem}", path.display())]
    SnapshotRoot {
        /// The root as given.
        path: PathBuf,
        /// What is wrong with it.
        problem: RootProblem,
    },

    /// A snapshot file cannot be read or parsed: `path[:line:column]: message`.
    #[error("{}{}: {message}", path.display(), position(*line, *column))]
    Snapshot {
        /// The snapshot file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known (1 when only the line is).
        column: Option<usize>,
        /// What is wrong.
        message: String,
    },

    /// A plan file cannot be read as one: `path[:line:column]: message`.
    #[error("{}{}: {message}", path.display(), position(*line, *column))]
    PlanFile {
        /// The plan file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// What is wrong.
        message: String,
    },

    /// The intents or a target's state changed since the plan was made.
    #[error("stale plan: {0}")]
    StalePlan(String),

    /// A plan file names a target the intents do not have.
    #[error(
        "plan file does not match the intents: they have no target {deployment:?}/{provider}; \
         nothing was changed, run plan again"
    )]
    PlanTarget {
        /// The plan file's deployment name (untrusted: shown quoted).
        deployment: String,
        /// The plan file's cloud.
        provider: ProviderKind,
    },

    /// A plan file differs from what planning gives now (edited, or another version's).
    #[error(
        "plan file does not match the plan the intents and state give now: {0}; it was edited \
         or made by another intentwall; nothing was changed, run plan again"
    )]
    PlanDiffers(String),

    /// A target's state changed between planning and writing; nothing was written to it.
    #[error(
        "{at} changed under us: the plan was computed from {} but it now holds {}; nothing was \
         written to this target, run plan again",
        describe(planned),
        describe(now)
    )]
    ChangedUnderUs {
        /// Where the state lives (snapshot file, store key).
        at: String,
        /// The fingerprint the plan was computed from (`absent`: no state).
        planned: String,
        /// The fingerprint found now.
        now: String,
    },

    /// After writing, the target's state is not what the changes meant.
    #[error("did not converge: {differing} object(s) differ after apply, first `{first}`")]
    NotConverged {
        /// How many objects differ.
        differing: usize,
        /// The first differing object's key.
        first: String,
    },

    /// A write that would leave its root directory, or go through a symlink or onto something
    /// that is not a regular file: refused, nothing written.
    #[error("{}: {why}; not written", path.display())]
    WriteRefused {
        /// The path refused.
        path: PathBuf,
        /// Why, in words.
        why: String,
    },

    /// A write target that names a directory rather than a file inside its root.
    #[error("{}: names no file inside `{}`", path.display(), root.display())]
    NoFileName {
        /// The path given.
        path: PathBuf,
        /// The root it had to be inside.
        root: PathBuf,
    },

    /// A name from an intent or plan file that would move a path out of its directory.
    #[error(
        "refusing path component {} under {}: names must be plain file names (no `/`, `..` or \
         absolute paths)",
        crate::intent::names::quote(component),
        root.display()
    )]
    UnsafeName {
        /// The component as given.
        component: String,
        /// The directory it had to stay in.
        root: PathBuf,
    },

    /// The lock file cannot be opened or is not a regular file.
    #[error("{}: {why}", path.display())]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// Why, in words.
        why: String,
    },

    /// Another run holds the root's lock past `--lock-timeout`; nothing was written.
    #[error(
        "snapshot directory `{}` is in use by another intentwall run ({holder}); waited \
         {waited_secs}s (--lock-timeout); nothing was written, run again when it has finished \
         (lock file {})",
        root.display(),
        lock_file.display()
    )]
    LockBusy {
        /// The locked directory.
        root: PathBuf,
        /// Who holds it, from the lock file's note.
        holder: String,
        /// How long this run waited.
        waited_secs: u64,
        /// The lock file.
        lock_file: PathBuf,
    },

    /// A cloud call failed (live backends): the call, the target, what kind of failure, and
    /// the cloud's own words.
    #[error("{0}")]
    Provider(#[from] intentwall_contract::live::ProviderError),

    /// This binary was built without the cloud's plugin.
    #[error("this intentwall was built without the `{0}` feature; rebuild with `--features {0}`")]
    MissingFeature(ProviderKind),

    /// A deployment selected by name (`--deployment`, a flow record) the intents do not have.
    #[error("unknown deployment `{0}`")]
    UnknownDeployment(String),

    /// A plan names a deployment the intents do not have.
    #[error("plan names unknown deployment `{0}`")]
    PlanDeployment(String),

    /// A deployment asked for on a cloud it is not placed on.
    #[error("deployment `{deployment}` has no {provider} placement")]
    NoPlacement {
        /// The deployment.
        deployment: String,
        /// The cloud.
        provider: ProviderKind,
    },

    /// `graph --from` names no group or network of the deployment.
    #[error("{0}")]
    Graph(String),

    /// A placement value that must not reach a permission grant.
    #[error(
        "refusing to grant on `{key}` {} of deployment `{deployment}`: {why}",
        crate::intent::names::quote(value)
    )]
    UnsafeGrant {
        /// The placement setting.
        key: String,
        /// Its value.
        value: String,
        /// The deployment it belongs to.
        deployment: String,
        /// Why it is refused.
        why: String,
    },

    /// `permissions` for a cloud no deployment is placed on.
    #[error("no deployment of the intents is placed on {0}: nothing to grant")]
    NothingToGrant(ProviderKind),

    /// A malformed flow log or record: `file:line: field: message`.
    #[error(transparent)]
    FlowLog(#[from] ParseError),

    /// Several targets failed the same step (observing their state), one per line: all are
    /// reported at once so one run shows every bad snapshot.
    #[error("{}", lines(.0))]
    Targets(Vec<Error>),

    /// A state the code rules out (a bug, never the user's input).
    #[error("{0}")]
    Internal(&'static str),
}

/// What is wrong with the snapshot root.
#[derive(Debug)]
pub enum RootProblem {
    /// It does not exist (a typo in `--snapshots`, or a first run without `--init`).
    Missing,
    /// It exists and is not a directory.
    NotADirectory,
    /// `--init` could not create it.
    CannotCreate(std::io::Error),
    /// It cannot be inspected.
    Io(std::io::Error),
}

impl std::fmt::Display for RootProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootProblem::Missing => f.write_str(
                " does not exist; check --snapshots, or pass --init to `plan`/`apply` to start \
                 from empty state",
            ),
            RootProblem::NotADirectory => f.write_str(" is not a directory"),
            RootProblem::CannotCreate(e) => write!(f, ": cannot create: {e}"),
            RootProblem::Io(e) => write!(f, ": {e}"),
        }
    }
}

impl Error {
    /// [`Error::File`].
    pub fn file(path: impl Into<PathBuf>, doing: &'static str, cause: std::io::Error) -> Error {
        Error::File {
            path: path.into(),
            doing,
            cause,
        }
    }

    /// [`Error::Usage`].
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(message.into())
    }
}

/// `:line:column` when the line is known (column 1 when only the line is), else nothing.
fn position(line: Option<usize>, column: Option<usize>) -> String {
    match line {
        Some(l) => format!(":{l}:{}", column.unwrap_or(1)),
        None => String::new(),
    }
}

/// A fingerprint in words: `no recorded state`, or `state` and its first 12 digits (by
/// character: a plan file's fingerprint is untrusted text).
fn describe(fingerprint: &str) -> String {
    if fingerprint == "absent" {
        "no recorded state".into()
    } else {
        let d = fingerprint.strip_prefix("sha256:").unwrap_or(fingerprint);
        format!("state {}", d.chars().take(12).collect::<String>())
    }
}

fn lines(errors: &[Error]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_shown_when_known() {
        let at = |line, column| Error::Snapshot {
            path: "s/us/aws.json".into(),
            line,
            column,
            message: "bad".into(),
        };
        assert_eq!(at(None, None).to_string(), "s/us/aws.json: bad");
        assert_eq!(at(Some(3), None).to_string(), "s/us/aws.json:3:1: bad");
        assert_eq!(at(Some(3), Some(7)).to_string(), "s/us/aws.json:3:7: bad");
    }

    #[test]
    fn changed_under_us_names_both_states() {
        let e = Error::ChangedUnderUs {
            at: "s/us/aws.json".into(),
            planned: "absent".into(),
            now: format!("sha256:{}", "ab".repeat(32)),
        };
        assert_eq!(
            e.to_string(),
            "s/us/aws.json changed under us: the plan was computed from no recorded state but it \
             now holds state abababababab; nothing was written to this target, run plan again"
        );
    }

    #[test]
    fn causes_are_told_once() {
        let e = Error::file(
            "plan.json",
            "cannot read plan",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(e.to_string(), "plan.json: cannot read plan: gone");
        assert!(std::error::Error::source(&e).is_none());
    }
}
