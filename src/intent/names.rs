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
//! format: a typo or a hostile value (`*`, `rg/../..`, a newline) is an error at its
//! `file:line:col`, never a wider grant.

use intentwall_contract::ProviderKind;

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

/// `Err(why)` unless `value` is a well-formed `key` of a `kind` placement. Keys without a
/// known format (CIDRs, checked elsewhere; `load_balancer_probes`) pass.
pub fn check_setting(kind: ProviderKind, key: &str, value: &str) -> Result<(), String> {
    let ok = match (kind, key) {
        (ProviderKind::Aws, "account") => {
            value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
        }
        (ProviderKind::Aws, "region") => aws_region(value),
        (ProviderKind::Aws, "vpc") => value
            .strip_prefix("vpc-")
            .is_some_and(|h| (h.len() == 8 || h.len() == 17) && lower_hex(h)),
        (ProviderKind::Azure, "subscription") => guid(value),
        (ProviderKind::Azure, "resource_group") => {
            (1..=90).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.()".contains(&b))
                && !value.ends_with('.')
        }
        (ProviderKind::Azure, "location") => {
            (1..=40).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        }
        (ProviderKind::Azure, "nsg") => {
            (1..=80).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && value.starts_with(|c: char| c.is_ascii_alphanumeric())
                && value.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        }
        (ProviderKind::Gcp, "project") => gcp_project(value),
        (ProviderKind::Gcp, "network") => rfc1035(value, 63),
        _ => return Ok(()),
    };
    if ok {
        return Ok(());
    }
    let want = match (kind, key) {
        (ProviderKind::Aws, "account") => "12 digits, e.g. \"111122223333\" (quoted)",
        (ProviderKind::Aws, "region") => "an AWS region such as us-east-1",
        (ProviderKind::Aws, "vpc") => "a VPC id: vpc- and 8 or 17 lowercase hex digits",
        (ProviderKind::Azure, "subscription") => {
            "a subscription id (a GUID such as 6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5)"
        }
        (ProviderKind::Azure, "resource_group") => {
            "1-90 of letters, digits, `-`, `_`, `.`, `(`, `)`, not ending in `.`"
        }
        (ProviderKind::Azure, "location") => {
            "an Azure location such as eastus (lowercase letters and digits)"
        }
        (ProviderKind::Azure, "nsg") => {
            "1-80 of letters, digits, `-`, `_`, `.`, starting with a letter or digit and ending with one or `_`"
        }
        (ProviderKind::Gcp, "project") => {
            "a project id: 6-30 of lowercase letters, digits and `-`, starting with a letter, not ending with `-`"
        }
        (ProviderKind::Gcp, "network") => {
            "a network name: 1-63 of lowercase letters, digits and `-`, starting with a letter, not ending with `-`"
        }
        _ => "a valid value",
    };
    Err(format!("must be {want}"))
}

/// `Err(why)` unless `value` looks like a GCP service account e-mail (it goes into firewall
/// rules and their API paths).
pub fn check_service_account(value: &str) -> Result<(), String> {
    let word = |s: &str| {
        (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let ok = value.split_once('@').is_some_and(|(user, domain)| {
        word(user) && domain.contains('.') && domain.split('.').all(word)
    });
    if ok {
        Ok(())
    } else {
        Err("must be a service account e-mail such as db@project-id.iam.gserviceaccount.com".into())
    }
}

fn lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`, `eu-central-1`.
fn aws_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].len() <= 2
        && !parts[parts.len() - 1].is_empty()
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

/// 8-4-4-4-12 hex digits.
fn guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `[a-z][a-z0-9-]{4,28}[a-z0-9]`.
fn gcp_project(s: &str) -> bool {
    (6..=30).contains(&s.len()) && rfc1035(s, 30)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`, at most `max` characters.
fn rfc1035(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
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

    #[test]
    fn placement_values() {
        use ProviderKind::*;
        let ok = [
            (Aws, "account", "111122223333"),
            (Aws, "region", "us-east-1"),
            (Aws, "region", "us-gov-west-1"),
            (Aws, "vpc", "vpc-0a1b2c3d"),
            (Aws, "vpc", "vpc-0a1b2c3d4e5f60718"),
            (
                Azure,
                "subscription",
                "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5",
            ),
            (Azure, "resource_group", "rg-prod_us.(1)"),
            (Azure, "location", "eastus2"),
            (Azure, "nsg", "nsg-prod-us"),
            (Gcp, "project", "acme-prod-us"),
            (Gcp, "network", "n"),
        ];
        for (k, key, v) in ok {
            assert!(check_setting(k, key, v).is_ok(), "{key} {v}");
        }
        let bad = [
            (Aws, "account", "*"),
            (Aws, "account", "1"),
            (Aws, "account", "11112222333a"),
            (Aws, "region", "*"),
            (Aws, "region", "us-east-1\n"),
            (Aws, "vpc", "vpc-*"),
            (Azure, "subscription", "*"),
            (Azure, "resource_group", "rg/../.."),
            (Azure, "resource_group", ".."),
            (Azure, "resource_group", "*"),
            (Azure, "nsg", "nsg\"x"),
            (Gcp, "project", "acme\nprod"),
            (Gcp, "project", "p"),
            (Gcp, "project", "Acme-prod"),
            (Gcp, "network", "prod-"),
        ];
        for (k, key, v) in bad {
            assert!(check_setting(k, key, v).is_err(), "{key} {v:?}");
        }
        assert!(check_service_account("db@acme-prod-us.iam.gserviceaccount.com").is_ok());
        assert!(check_service_account("123-compute@developer.gserviceaccount.com").is_ok());
        assert!(check_service_account("a\n@b").is_err());
        assert!(check_service_account("*").is_err());
    }
}
