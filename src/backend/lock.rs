//! One writer per snapshot root (docs/safety.md): every run that writes snapshots (`apply`,
//! `plan --emit`) holds an exclusive `flock(2)` on `<root>/.intentwall.lock` for its whole
//! run, planning included, so two runs never interleave their reads and writes of one target.
//!
//! Why `flock` on a file that stays: the kernel releases the lock when the process exits, even
//! on `kill -9`, so a crash never leaves a stale lock to clean by hand. The file is never
//! deleted: a waiter could otherwise lock an unlinked inode while a third run creates a new
//! file and locks that too. Its content is only a note for humans: the holder writes its pid,
//! host, start time and command line after locking, and a run that finds the lock busy
//! quotes it in its error. The note is cleared when the holder is done.

use crate::error::Error;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of the lock file in the snapshot (or emit) root.
pub const LOCK_FILE: &str = ".intentwall.lock";

/// A held lock; dropping it (or exiting, or crashing) releases it.
#[derive(Debug)]
pub struct RootLock {
    file: std::fs::File,
    path: PathBuf,
}

impl RootLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RootLock {
    fn drop(&mut self) {
        // clear the note while still holding the lock; closing the file then unlocks
        let _ = self.file.set_len(0);
    }
}

/// Take the exclusive lock of `root` (which must exist), waiting up to `wait` for another run
/// to finish (polling; `Duration::ZERO` fails at once). Busy after the wait: an error naming
/// the holder from its note. Once held, the holder note is written and the leftovers of a
/// killed run are removed from the root ([`super::snapshot::remove_leftovers`]).
pub fn acquire(root: &Path, wait: Duration) -> Result<RootLock, Error> {
    let path = root.join(LOCK_FILE);
    let mut file = open(&path)?;
    let start = Instant::now();
    loop {
        if try_lock(&file).map_err(|e| Error::file(&path, "cannot lock", e))? {
            break;
        }
        let waited = start.elapsed();
        if waited >= wait {
            return Err(Error::LockBusy {
                root: root.to_path_buf(),
                holder: holder(&mut file),
                waited_secs: wait.as_secs(),
                lock_file: path,
            });
        }
        std::thread::sleep((wait - waited).min(Duration::from_millis(100)));
    }
    let note = note();
    let written = file
        .set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(note.as_bytes()));
    if let Err(e) = written {
        // the lock is held all the same; only the note for others is missing
        tracing::warn!(path = %path.display(), error = %e, "cannot record the lock holder");
    }
    tracing::info!(path = %path.display(), holder = %note.trim_end(), "took the snapshot lock");
    super::snapshot::remove_leftovers(root);
    Ok(RootLock { file, path })
}

/// Open (creating) the lock file without following a symlink and without blocking on a FIFO,
/// and require a regular file: the lock file is in a directory others may write to.
fn open(path: &Path) -> Result<std::fs::File, Error> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = opts.open(path).map_err(|e| Error::LockFile {
        path: path.to_path_buf(),
        why: format!(
            "cannot open the lock file: {e} (it must be a regular file, not a symbolic link)"
        ),
    })?;
    let meta = file.metadata().map_err(|cause| Error::Path {
        path: path.to_path_buf(),
        cause,
    })?;
    if !meta.is_file() {
        return Err(Error::LockFile {
            path: path.to_path_buf(),
            why: "the lock file is not a regular file; remove it".into(),
        });
    }
    Ok(file)
}

/// `flock(LOCK_EX | LOCK_NB)`: true when taken, false when another open file holds it.
#[cfg(unix)]
fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &std::fs::File) -> std::io::Result<bool> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "snapshot locking is implemented for Unix only",
    ))
}

/// The holder's note, made printable and short, for a busy error.
fn holder(file: &mut std::fs::File) -> String {
    let mut buf = Vec::new();
    let read = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| Read::by_ref(file).take(1024).read_to_end(&mut buf));
    let text = printable(&String::from_utf8_lossy(&buf));
    if read.is_err() || text.is_empty() {
        "holder not recorded yet".into()
    } else {
        format!("held by {text}")
    }
}

/// What the holder writes: pid, host, start time (UTC) and command line.
fn note() -> String {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "an unknown time".into());
    let command: Vec<String> = std::env::args().collect();
    format!(
        "pid {} on host {} since {now}: {}\n",
        std::process::id(),
        printable(&hostname()),
        printable(&command.join(" "))
    )
}

/// One line of at most 300 characters, control characters replaced: the note is quoted in
/// error messages and log lines.
fn printable(s: &str) -> String {
    let mut out: String = s
        .trim()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(300)
        .collect();
    if s.trim().chars().count() > 300 {
        out.push('…');
    }
    out
}

#[cfg(unix)]
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(not(unix))]
fn hostname() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_waits_then_names_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let held = acquire(d.path(), Duration::ZERO).unwrap();
        let t = Instant::now();
        let e = acquire(d.path(), Duration::from_millis(300)).unwrap_err();
        assert!(t.elapsed() >= Duration::from_millis(300));
        let msg = format!("{e:#}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(held);
        // released: the note is cleared and the lock can be taken again
        assert_eq!(std::fs::read(d.path().join(LOCK_FILE)).unwrap(), b"");
        acquire(d.path(), Duration::ZERO).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_lock_file_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        let root = d.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join(LOCK_FILE)).unwrap();
        let e = acquire(&root, Duration::ZERO).unwrap_err();
        assert!(format!("{e:#}").contains("symbolic link"), "{e:#}");
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    }

    #[test]
    fn printable_notes_are_one_short_line() {
        assert_eq!(printable("a\nb\u{0}c"), "a?b?c");
        assert_eq!(printable(&"x".repeat(400)).chars().count(), 301);
    }
}
