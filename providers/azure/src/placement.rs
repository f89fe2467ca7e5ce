//! What an Azure placement holds: `subscription`, `resource_group`, `location`, `nsg`,
//! `vnet_cidr` (and `vnet_cidr6`, `load_balancer_probes`), with the formats Azure gives them;
//! `service_tags` is its address book.

use intentwall_contract::placement::PlacementSchema;

/// The Azure placement.
pub const PLACEMENT: PlacementSchema = PlacementSchema {
    required: &[
        "subscription",
        "resource_group",
        "location",
        "nsg",
        "vnet_cidr",
    ],
    optional: &["vnet_cidr6", "load_balancer_probes"],
    cidr: "vnet_cidr",
    cidr6: "vnet_cidr6",
    address_books: &["service_tags"],
    group_settings: &[],
    check,
};

fn check(key: &str, value: &str) -> Result<(), String> {
    if key == "service_tags" {
        // the name of an entry of the address book: AzureMonitor, Storage.EastUS,
        // AzureCloud.westeurope
        let tag = value.len() <= 80
            && value.starts_with(|c: char| c.is_ascii_alphabetic())
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
        return match tag {
            true => Ok(()),
            false => Err("is not a service tag name (letters, digits and `.`)".into()),
        };
    }
    let (ok, want) = match key {
        "subscription" => (
            guid(value),
            "a subscription id (a GUID such as 6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5)",
        ),
        "resource_group" => (
            (1..=90).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.()".contains(&b))
                && !value.ends_with('.'),
            "1-90 of letters, digits, `-`, `_`, `.`, `(`, `)`, not ending in `.`",
        ),
        "location" => (
            (1..=40).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "an Azure location such as eastus (lowercase letters and digits)",
        ),
        "nsg" => (
            (1..=80).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && value.starts_with(|c: char| c.is_ascii_alphanumeric())
                && value.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'),
            "1-80 of letters, digits, `-`, `_`, `.`, starting with a letter or digit and ending with one or `_`",
        ),
        _ => return Ok(()),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("must be {want}"))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        for (key, v) in [
            ("subscription", "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5"),
            ("resource_group", "rg-prod_us.(1)"),
            ("location", "eastus2"),
            ("nsg", "nsg-prod-us"),
            ("service_tags", "Storage.EastUS"),
        ] {
            assert!((PLACEMENT.check)(key, v).is_ok(), "{key} {v}");
        }
        for (key, v) in [
            ("subscription", "*"),
            ("resource_group", "rg/../.."),
            ("resource_group", ".."),
            ("resource_group", "*"),
            ("nsg", "nsg\"x"),
            ("service_tags", "Storage/EastUS"),
        ] {
            assert!((PLACEMENT.check)(key, v).is_err(), "{key} {v:?}");
        }
    }
}
