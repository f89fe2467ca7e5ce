//! `man`: the roff man page, generated from the clap definition the binary parses with, so
//! it never lags behind the CLI and packagers need no separate source:
//! `intentwall man > intentwall.1`.
//!
//! One page: clap_mangen's page for the program (global flags, the verbs' one-line help),
//! then a VERBS section with each verb's synopsis and flags (clap_mangen alone would refer
//! to an `intentwall-<verb>(1)` page per verb that nothing installs), then EXIT STATUS, which
//! CI wrappers depend on.

use crate::cli::Cli;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::to_stdout;
use clap::CommandFactory;

/// Write the man page to stdout.
pub fn run() -> Result<ExitStatus, Error> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    to_stdout(|o| {
        man.render_title(o)?;
        man.render_name_section(o)?;
        man.render_synopsis_section(o)?;
        man.render_description_section(o)?;
        man.render_options_section(o)?;
        o.write_all(verbs(&cmd).as_bytes())?;
        o.write_all(EXIT_STATUS.as_bytes())?;
        man.render_version_section(o)
    })?;
    Ok(ExitStatus::Ok)
}

/// The exit codes, as the README's table states them.
const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
0
Success; \fBplan\fR: no changes; \fBapply\fR: every target applied or already converged.
.TP
1
Error: malformed intent, snapshot or plan file, usage error, I/O, stale plan, lock busy.
.TP
2
\fBplan\fR succeeded and has changes to review (not a failure).
.TP
3
Blocked by a finding: simulation mismatch, failed expectation, guardrail (an expired
exception included), inexpressible intent, quota limit, unmanaged conflict.
"#;

/// One subsection per verb: `intentwall VERB [ARGS]`, its help, its flags.
fn verbs(cmd: &clap::Command) -> String {
    let mut s = String::from(".SH VERBS\n");
    for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
        let mut synopsis = format!("intentwall {}", sub.get_name());
        for a in sub.get_positionals() {
            synopsis.push_str(&format!(" <{}>", a.get_id().as_str().to_uppercase()));
        }
        s.push_str(&format!(".SS \"{}\"\n", roff(&synopsis)));
        let about = sub.get_long_about().or(sub.get_about());
        if let Some(a) = about {
            s.push_str(&format!("{}\n", roff(&a.to_string())));
        }
        for a in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let name = match (a.get_short(), a.get_long()) {
                (_, Some(l)) => format!("\\fB\\-\\-{}\\fR", roff(l)),
                (Some(c), None) => format!("\\fB\\-{c}\\fR"),
                (None, None) => format!("\\fI<{}>\\fR", a.get_id().as_str().to_uppercase()),
            };
            let takes_value = a.get_action().takes_values();
            let values: Vec<String> = a
                .get_possible_values()
                .iter()
                .filter(|v| takes_value && !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect();
            s.push_str(&format!(".TP\n{name}"));
            if !values.is_empty() {
                s.push_str(&format!(" [{}]", roff(&values.join("|"))));
            }
            s.push('\n');
            if let Some(h) = a.get_help() {
                s.push_str(&format!("{}\n", roff(&h.to_string())));
            }
        }
    }
    s
}

/// Escape text for roff: backslashes, hyphens (else typeset as hyphens, not minus signs),
/// and a leading `.` or `'` (else read as a request).
fn roff(t: &str) -> String {
    let e = t.replace('\\', "\\e").replace('-', "\\-");
    if e.starts_with('.') || e.starts_with('\'') {
        format!("\\&{e}")
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn roff_escapes_requests_and_hyphens() {
        assert_eq!(super::roff(".x -y \\"), "\\&.x \\-y \\e");
    }
}
