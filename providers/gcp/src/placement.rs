//! What a GCP placement holds: `project`, `network`, `cidr` (and `cidr6`), with the formats
//! GCP gives them; and the service accounts a group may be matched by.

use intentwall_contract::placement::{rfc1035, PlacementSchema};

/// The GCP placement.
pub const PLACEMENT: PlacementSchema = PlacementSchema {
    required: &["project", "network", "cidr"],
    optional: &["cidr6"],
    cidr: "cidr",
    cidr6: "cidr6",
    address_books: &[],
    group_settings: &["service_account"],
    check,
};

fn check(key: &str, value: &str) -> Result<(), String> {
    let (ok, want) = match key {
        "project" => (
            (6..=30).contains(&value.len()) && rfc1035(value, 30),
            "a project id: 6-30 of lowercase letters, digits and `-`, starting with a letter, not ending with `-`",
        ),
        "network" => (
            rfc1035(value, 63),
            "a network name: 1-63 of lowercase letters, digits and `-`, starting with a letter, not ending with `-`",
        ),
        "service_account" => (
            service_account(value),
            "a service account e-mail such as db@project-id.iam.gserviceaccount.com",
        ),
        _ => return Ok(()),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("must be {want}"))
    }
}

/// A service account e-mail (it goes into firewall rules and their API paths).
fn service_account(value: &str) -> bool {
    let word = |s: &str| {
        (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    value.split_once('@').is_some_and(|(user, domain)| {
        word(user) && domain.contains('.') && domain.split('.').all(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        for (key, v) in [
            ("project", "acme-prod-us"),
            ("network", "n"),
            ("service_account", "db@acme-prod-us.iam.gserviceaccount.com"),
            (
                "service_account",
                "123-compute@developer.gserviceaccount.com",
            ),
        ] {
            assert!((PLACEMENT.check)(key, v).is_ok(), "{key} {v}");
        }
        for (key, v) in [
            ("project", "acme\nprod"),
            ("project", "p"),
            ("project", "Acme-prod"),
            ("network", "prod-"),
            ("service_account", "a\n@b"),
            ("service_account", "*"),
        ] {
            assert!((PLACEMENT.check)(key, v).is_err(), "{key} {v:?}");
        }
    }
}
