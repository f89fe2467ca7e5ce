//! Colour for the human plan on a terminal, Terraform-like: `+` create green, `-` delete red,
//! `~` update and `-/+` replace yellow, `BLOCKED` and mismatches red.
//!
//! A post-pass over the rendered text, line by line, so the renderer stays one plain-text
//! function that files, pipes and tests read byte for byte; only the copy bound for a
//! terminal is painted. Colour is on when stdout is a terminal, off when `NO_COLOR` is set to
//! anything non-empty (no-color.org), and forced by a non-empty `CLICOLOR_FORCE` other than
//! `0` (for pagers such as `less -R`); `NO_COLOR` wins.

use std::io::IsTerminal;

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const BOLD_RED: &str = "\x1b[1;31m";
const RESET: &str = "\x1b[0m";

/// Whether text written to stdout should be coloured.
pub fn enabled() -> bool {
    enabled_for(std::io::stdout().is_terminal())
}

/// Whether text written to stderr should be coloured (the plan `apply --auto-approve` shows).
pub fn enabled_on_stderr() -> bool {
    enabled_for(std::io::stderr().is_terminal())
}

fn enabled_for(tty: bool) -> bool {
    decide(
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("CLICOLOR_FORCE").as_deref(),
        tty,
    )
}

fn decide(no_color: Option<&std::ffi::OsStr>, force: Option<&std::ffi::OsStr>, tty: bool) -> bool {
    if no_color.is_some_and(|v| !v.is_empty()) {
        return false;
    }
    if force.is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    tty
}

/// `text` with each change line painted by its marker. Lines keep their bytes otherwise:
/// stripping the escape sequences gives `text` back.
pub fn colorize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        match paint(body) {
            Some(c) if !body.is_empty() => {
                out.push_str(c);
                out.push_str(body);
                out.push_str(RESET);
            }
            _ => out.push_str(body),
        }
        out.push_str(nl);
    }
    out
}

/// The colour of one line of the human plan, if any.
fn paint(line: &str) -> Option<&'static str> {
    let t = line.trim_start();
    let indented = t.len() < line.len();
    if indented && t.starts_with("-/+ ") {
        Some(YELLOW)
    } else if indented && t.starts_with("+ ") {
        Some(GREEN)
    } else if indented && t.starts_with("- ") {
        Some(RED)
    } else if indented && t.starts_with("~ ") {
        Some(YELLOW)
    } else if indented && t.starts_with("! ") {
        Some(RED)
    } else if t.starts_with("BLOCKED") || t.starts_with("blocked") || t.contains("MISMATCH") {
        Some(BOLD_RED)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::ffi::OsStr;

    #[test]
    fn change_lines_are_painted_by_marker() {
        let plan = "us / aws  (snapshots/us/aws.json)\n    + sg-rule a\n    - sg-rule b\n    ~ nsg-rule c\n        destinationPortRanges: [\"1\"] -> [\"2\"]\n    -/+ firewall d\n  BLOCKED: this target will not be applied\n+ not indented\n";
        let c = colorize(plan);
        assert!(c.contains("\x1b[32m    + sg-rule a\x1b[0m\n"));
        assert!(c.contains("\x1b[31m    - sg-rule b\x1b[0m\n"));
        assert!(c.contains("\x1b[33m    ~ nsg-rule c\x1b[0m\n"));
        assert!(c.contains("\x1b[33m    -/+ firewall d\x1b[0m\n"));
        assert!(c.contains("\x1b[1;31m  BLOCKED"));
        assert!(c.starts_with("us / aws  (snapshots/us/aws.json)\n"));
        assert!(c.contains("\n        destinationPortRanges"));
        assert!(c.ends_with("\n+ not indented\n"));
    }

    #[test]
    fn no_color_wins_then_force_then_the_terminal() {
        let on = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(!decide(on, on, true));
        assert!(decide(empty, None, true));
        assert!(decide(None, on, false));
        assert!(!decide(None, Some(OsStr::new("0")), false));
        assert!(!decide(None, None, false));
        assert!(decide(None, None, true));
    }

    proptest! {
        /// Colouring only adds escape sequences: removing them gives the text back.
        #[test]
        fn stripping_the_colours_gives_the_text_back(lines in proptest::collection::vec(
            "( {0,6})(\\+ |- |~ |-/\\+ |BLOCKED|x)?[a-z :]{0,12}", 0..12), nl in any::<bool>()) {
            let mut text = lines.join("\n");
            if nl { text.push('\n'); }
            let c = colorize(&text);
            let stripped = c
                .replace(GREEN, "").replace(RED, "").replace(YELLOW, "")
                .replace(BOLD_RED, "").replace(RESET, "");
            prop_assert_eq!(stripped, text);
        }
    }
}
