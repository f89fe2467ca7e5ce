//! Logging through `tracing`, always to stderr: stdout is for data. Text for people, JSON
//! lines for CronJobs and log pipelines.
//!
//! Levels: by default only warnings, errors and the audit trail (target `audit`: every
//! mutating change, at info) are shown, so an unattended job's log is its audit trail;
//! `-v` shows info, `-vv` debug (every backend call); `RUST_LOG` replaces all of that.
//!
//! Under `--log-format json` every line on stderr is one JSON object, the human text
//! (intent diagnostics, `blocked:` findings, the plan `apply --auto-approve` shows, the final
//! `error:` line) included: it goes through [`human`], which wraps it as the `message` field of
//! an object shaped like the tracing events. Colours only when stderr is a terminal and
//! `NO_COLOR` is unset, so piped or collected logs never hold escape codes.

use crate::cli::LogFormat;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// The format chosen at [`init`]; text until then.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The default filter for `-v` counted `verbose` times: warnings and the audit trail, then
/// info, then debug.
pub fn default_filter(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn,audit=info",
        1 => "info",
        _ => "debug",
    }
}

/// Whether colour escape codes may be written to stderr.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Install the global subscriber (once; later calls are ignored).
pub fn init(format: LogFormat, verbose: u8) {
    let _ = FORMAT.set(format);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter(verbose)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(colour()).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// Severity of a piece of human text on stderr (its `level` under JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Shown for information (the plan `apply --auto-approve` is about to apply).
    Info,
    /// Intent warnings.
    Warn,
    /// Errors and blocking findings.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Write human text to stderr: as it is under text logs, as one JSON line under JSON logs
/// (never filtered out: it is the command's own output, not a log line).
pub fn human(level: Level, text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(render(FORMAT.get().copied(), level, text).as_bytes());
}

/// What [`human`] writes for a format (`None`: logging not started, text).
fn render(format: Option<LogFormat>, level: Level, text: &str) -> String {
    match format {
        Some(LogFormat::Json) => {
            let timestamp = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let line = serde_json::json!({
                "timestamp": timestamp,
                "level": level.as_str(),
                "fields": { "message": text.trim_end_matches('\n') },
                "target": "intentwall",
            });
            format!("{line}\n")
        }
        _ => text.to_string(),
    }
}

/// Who makes a change, for audit events: `INTENTWALL_ACTOR` when set (a job names its cloud
/// identity there), else `user@host` (`uid:N` without a user name: containers have none).
pub fn actor() -> String {
    static ACTOR: OnceLock<String> = OnceLock::new();
    ACTOR
        .get_or_init(|| {
            let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
            if let Some(a) = var("INTENTWALL_ACTOR") {
                return a;
            }
            let user = var("USER").or_else(|| var("LOGNAME")).unwrap_or_else(uid);
            let host = var("HOSTNAME").unwrap_or_else(hostname);
            format!("{user}@{host}")
        })
        .clone()
}

#[cfg(unix)]
fn uid() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    format!("uid:{}", unsafe { libc::getuid() })
}

#[cfg(not(unix))]
fn uid() -> String {
    "unknown".into()
}

#[cfg(unix)]
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
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
    fn human_text_is_one_json_line_under_json() {
        let s = render(Some(LogFormat::Json), Level::Error, "a\nb: \"c\"\n");
        assert_eq!(s.matches('\n').count(), 1, "{s}");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["fields"]["message"], "a\nb: \"c\"");
        assert_eq!(v["level"], "ERROR");
        assert_eq!(render(Some(LogFormat::Text), Level::Info, "x\n"), "x\n");
        assert_eq!(render(None, Level::Info, "x\n"), "x\n");
    }

    #[test]
    fn audit_events_pass_the_default_filter() {
        assert!(default_filter(0).contains("audit=info"));
    }
}
