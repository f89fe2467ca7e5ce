//! Rule names: RFC 1035 labels of at most 63 characters, unique per project, deterministic.

/// Longest firewall name the API accepts.
pub const MAX_NAME: usize = 63;

/// `[a-z]([-a-z0-9]*[a-z0-9])?`, 1-63 characters.
pub fn is_valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

/// Lowercase, every other character to `-`, runs of `-` collapsed, no `-` at the ends.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches('-').to_string()
}

/// `raw` if it is a valid name; otherwise a sanitised, truncated form with a hash of `raw`
/// appended, so distinct inputs stay distinct and the same input always gives the same name.
pub fn fit(raw: &str) -> String {
    if is_valid_name(raw) {
        return raw.to_string();
    }
    let suffix = format!(
        "-{:010x}",
        intentwall_contract::fnv1a64(0, raw.bytes()) & 0xff_ffff_ffff
    );
    let mut base = sanitize(raw);
    let room = MAX_NAME - suffix.len();
    if base.len() > room {
        base.truncate(room);
    }
    let mut base = base.trim_end_matches('-').to_string();
    if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
        base.insert_str(0, "iw-");
        base.truncate(room);
        base = base.trim_end_matches('-').to_string();
    }
    format!("{base}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_invalid_names_are_fitted_deterministically() {
        let long = format!("iw-us-{}-in-1", "a".repeat(80));
        let n = fit(&long);
        assert!(is_valid_name(&n), "{n}");
        assert_eq!(n, fit(&long));
        assert_ne!(n, fit(&format!("iw-us-{}-in-2", "a".repeat(80))));
        let odd = fit("iw-us-Web_From_Internet-in-1");
        assert!(is_valid_name(&odd), "{odd}");
        assert!(odd.starts_with("iw-us-web-from-internet-in-1-"));
        assert_eq!(fit("iw-us-ok-in-1"), "iw-us-ok-in-1");
    }
}
