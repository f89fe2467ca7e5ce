//! What a name or a placement value may be, checked once at load.
//!
//! Names (deployments, groups, networks, services, flows, region directories) reach file
//! paths (`snapshots/<deployment>/`), cloud resource names (`iw-<group>`), DOT/Mermaid/Markdown
//! output and audit logs. Rather than escaping them for each of those, the loader accepts only
//! names that are safe everywhere: ASCII letters, digits, `-`, `_`, `.`, starting with a
//! letter or digit, at most [`MAX_NAME`] characters. That rules out `.`/`..`, separators,
//! control characters, quotes and shell or markup syntax in one rule.
//!
//! Placement values (account ids, regions, subscriptions, projects, ...) go into IAM policy
//! documents, role scopes and cloud API paths, so each is checked against its cloud's own
//! format, which the cloud's plugin declares (`contract::placement`): a typo or a hostile value
//! (`*`, `rg/../..`, a newline) is an error at its `file:line:col`, never a wider grant.
/// Longest accepted name, in characters.
pub const MAX_NAME: usize = 64;

/// `text` quoted for a message: inside backticks, control characters and non-ASCII shown as
/// escapes (`\n`, `\0`, `\u{202e}`), and cut after 80 characters, so a hostile name can
/// neither break the line it is reported on nor flood the terminal.
pub fn quote(text: &str) -> String {
    let mut out = String::from("`");
    for (n, c) in text.chars().enumerate() {
        if n == 80 {
            out.push_str("...");
            break;
        }
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out.push('`');
    out
}

/// `Err(why)` unless `name` is a valid name (see the module docs).
pub fn check_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if name.is_empty() {
        return Err("a name cannot be empty".into());
    }
    if name == "." || name == ".." {
        return Err("`.` and `..` are not names".into());
    }
    if len > MAX_NAME {
        return Err(format!(
            "is {len} characters long; names have at most {MAX_NAME}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "contains {}; names use only letters, digits, `-`, `_` and `.`",
            describe(c)
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or a digit".into());
    }
    Ok(())
}

/// A character as a reader should see it in a message.
fn describe(c: char) -> String {
    match c {
        '/' | '\\' => format!("a path separator `{c}`"),
        ' ' => "a space".into(),
        '\'' | '"' => format!("a quote `{c}`"),
        '`' => "a backtick".into(),
        c if c.is_control() => format!("the control character `{}`", c.escape_default()),
        c if c.is_ascii() => format!("`{c}`"),
        c => format!("the non-ASCII character `{}`", c.escape_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "web",
            "a",
            "9lives",
            "api.v2",
            "db_primary",
            "x-y",
            &"a".repeat(64),
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../etc",
            "/etc",
            "-x",
            "_x",
            ".x",
            "a b",
            "a\nb",
            "a\0b",
            "a\"b",
            "a'b",
            "a/b",
            "a\\b",
            "café",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quote_escapes_what_a_terminal_would_obey() {
        assert_eq!(quote("a\nb\0c\u{1b}[31m"), "`a\\nb\\u{0}c\\u{1b}[31m`");
        assert_eq!(quote(&"x".repeat(300)).len(), 80 + 5);
    }
}
