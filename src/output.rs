//! Writing results to standard output: buffered, and quiet when the reader goes away.
//!
//! Results go to stdout and everything else (diagnostics, logs, the plan that `apply
//! --auto-approve` shows) to stderr, so `intentwall plan --format json | jq` always reads a
//! document. A closed pipe (`| head`) is not an error of ours: the reader has what it wanted.

use crate::error::Error;
use std::io::Write;

/// Write to stdout through a buffer; a closed pipe is not an error.
pub fn to_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), Error> {
    let mut o = std::io::BufWriter::new(std::io::stdout().lock());
    match write(&mut o).and_then(|_| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Write a value as pretty JSON to stdout without building the text first (at estate scale
/// a plan's document is hundreds of megabytes).
pub fn out_json<T: serde::Serialize>(v: &T) -> Result<(), Error> {
    to_stdout(|o| {
        serde_json::to_writer_pretty(&mut *o, v)?;
        o.write_all(b"\n")
    })
}

/// Write text to stdout.
pub fn out(s: &str) -> Result<(), Error> {
    to_stdout(|o| o.write_all(s.as_bytes()))
}

/// Standard output that a reader may close (`| head`): from then on writes are dropped, as
/// the data is of no use to anyone; planning and the plan file go on.
pub struct Stdout {
    w: Option<std::io::BufWriter<std::io::StdoutLock<'static>>>,
}

impl Stdout {
    /// Locked, buffered stdout.
    pub fn new() -> Stdout {
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

impl Default for Stdout {
    fn default() -> Self {
        Stdout::new()
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

/// A progress bar on stderr for a run over `total` targets, shown only where someone watches
/// it: stderr is a terminal, more than one target, human logs at the default level (with
/// `-v` the log lines already show progress; under `--log-format json` every stderr line
/// must be JSON). Hidden otherwise, so pipes, CI logs and files never see its escape codes.
pub fn progress(cli: &crate::cli::Cli, total: usize, what: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let watched = std::io::stderr().is_terminal()
        && total > 1
        && cli.verbose == 0
        && cli.log_format == crate::cli::LogFormat::Text;
    if !watched {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} {msg} {pos}/{len} targets [{bar:30}] {elapsed}",
    )
    .map(|s| s.progress_chars("=> "));
    if let Ok(s) = style {
        bar.set_style(s);
    }
    bar.set_message(what);
    // the spinner turns while every target is observed, before the first one is planned
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
