//! What an AWS placement holds: `account`, `region`, `vpc`, `cidr` (and `cidr6`), with the
//! formats AWS gives them; `role` (and `external_id`): the IAM role the live backend assumes
//! to act in the account; `prefix_lists` is its address book.

use intentwall_contract::placement::{lower_hex, PlacementSchema};

/// The AWS placement.
pub const PLACEMENT: PlacementSchema = PlacementSchema {
    required: &["account", "region", "vpc", "cidr"],
    optional: &["cidr6", "role", "external_id"],
    cidr: "cidr",
    cidr6: "cidr6",
    address_books: &["prefix_lists"],
    group_settings: &[],
    check,
};

fn check(key: &str, value: &str) -> Result<(), String> {
    if key == "prefix_lists" {
        // the name of an entry of the address book: a prefix list id
        let id = value
            .strip_prefix("pl-")
            .is_some_and(|h| (8..=17).contains(&h.len()) && lower_hex(h));
        return match id {
            true => Ok(()),
            false => Err("is not a prefix list id (pl- and 8 or 17 hex digits)".into()),
        };
    }
    let (ok, want) = match key {
        "account" => (
            value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()),
            "12 digits, e.g. \"111122223333\" (quoted)",
        ),
        "region" => (region(value), "an AWS region such as us-east-1"),
        "role" => (
            role_arn(value),
            "an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>",
        ),
        // what STS accepts for ExternalId
        "external_id" => (
            (2..=1224).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/-_".contains(&b)),
            "2-1224 characters of letters, digits and +=,.@:/-_",
        ),
        "vpc" => (
            value
                .strip_prefix("vpc-")
                .is_some_and(|h| (h.len() == 8 || h.len() == 17) && lower_hex(h)),
            "a VPC id: vpc- and 8 or 17 lowercase hex digits",
        ),
        _ => return Ok(()),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("must be {want}"))
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<path/><name>`.
fn role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix("role/").is_some_and(|n| {
            !n.is_empty()
                && n.len() <= 512
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
        })
}

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`, `eu-central-1`.
fn region(s: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        for (key, v) in [
            ("account", "111122223333"),
            ("region", "us-east-1"),
            ("region", "us-gov-west-1"),
            ("vpc", "vpc-0a1b2c3d"),
            ("vpc", "vpc-0a1b2c3d4e5f60718"),
            ("cidr", "anything: checked as a CIDR by the loader"),
            ("prefix_lists", "pl-0123abcd"),
        ] {
            assert!((PLACEMENT.check)(key, v).is_ok(), "{key} {v}");
        }
        for (key, v) in [
            ("account", "*"),
            ("account", "1"),
            ("account", "11112222333a"),
            ("region", "*"),
            ("region", "us-east-1\n"),
            ("vpc", "vpc-*"),
            ("prefix_lists", "pl-1"),
            ("prefix_lists", "prefix"),
        ] {
            assert!((PLACEMENT.check)(key, v).is_err(), "{key} {v:?}");
        }
    }
}
