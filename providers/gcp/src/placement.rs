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
        _ => return Ok(()),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("must be {want}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        for (key, v) in [("project", "acme-prod-us"), ("network", "n")] {
            assert!((PLACEMENT.check)(key, v).is_ok(), "{key} {v}");
        }
        for (key, v) in [
            ("project", "acme\nprod"),
            ("project", "p"),
            ("project", "Acme-prod"),
            ("network", "prod-"),
        ] {
            assert!((PLACEMENT.check)(key, v).is_err(), "{key} {v:?}");
        }
    }
}
