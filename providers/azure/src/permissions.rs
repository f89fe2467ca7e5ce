//! The custom role `intentwall permissions azure` prints (for `az role definition create`):
//! the least privilege the job needs, assignable to the intents' resource groups
//! (`/subscriptions/S/resourceGroups/RG`).
//!
//! Why each permission is there:
//! - `networkSecurityGroups/read`, `securityRules/read`: read the observed state;
//! - `networkSecurityGroups/write`: create the deployment's NSG in a new region (the NSG is a
//!   managed container of the translation);
//! - `securityRules/write`, `securityRules/delete`: create, update, remove rules;
//! - `applicationSecurityGroups/read`, `applicationSecurityGroups/write`: read and create the
//!   `iw-<group>` ASGs;
//! - `applicationSecurityGroups/joinNetworkSecurityRule/action`: a rule that names an ASG as
//!   source or destination needs it (Azure checks it on the ASG when the rule is written);
//! - `applicationSecurityGroups/joinIpConfiguration/action`: joins NICs to the groups' ASGs,
//!   the Azure side of group membership.
//! - `Microsoft.Authorization/permissions/read`: `apply --preflight` reads the caller's own
//!   permissions at the resource group (`Permissions_ListForResourceGroup`); ARM lists it as
//!   the action of that call, so a role without it may be refused the check.
//!
//! The live backend makes no other call. The status of a long-running write lives at
//! subscription scope (`locations/operations`), outside the resource groups the role is
//! assignable to, so it is not asked for: when reading it is refused, the backend polls the
//! written resource itself, which the reads above cover. NSGs are never deleted.

use intentwall_contract::ident::ROLE_NAME;
use serde_json::{json, Value};

/// The placement settings the role is scoped by, in the order [`role`] reads them.
pub const PLACEMENT_KEYS: &[&str] = &["subscription", "resource_group"];

/// The role for the placements (each its [`PLACEMENT_KEYS`] values, in order, already checked
/// against Azure's formats: they become scopes), as a role definition.
pub fn role(places: &[Vec<String>]) -> Value {
    let field = |p: &Vec<String>, i: usize| p.get(i).cloned().unwrap_or_default();
    let scopes: Vec<String> = places
        .iter()
        .map(|p| {
            format!(
                "/subscriptions/{}/resourceGroups/{}",
                field(p, 0),
                field(p, 1)
            )
        })
        .collect();
    json!({
        "Name": ROLE_NAME,
        "IsCustom": true,
        "Description": "intentwall: read and change NSG rules and application security groups of the intents' resource groups",
        "Actions": [
            "Microsoft.Network/networkSecurityGroups/read",
            "Microsoft.Network/networkSecurityGroups/write",
            "Microsoft.Network/networkSecurityGroups/securityRules/read",
            "Microsoft.Network/networkSecurityGroups/securityRules/write",
            "Microsoft.Network/networkSecurityGroups/securityRules/delete",
            "Microsoft.Network/applicationSecurityGroups/read",
            "Microsoft.Network/applicationSecurityGroups/write",
            "Microsoft.Network/applicationSecurityGroups/joinNetworkSecurityRule/action",
            "Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action",
            "Microsoft.Authorization/permissions/read"
        ],
        "NotActions": [],
        "DataActions": [],
        "NotDataActions": [],
        "AssignableScopes": scopes
    })
}

/// [`role`] as the command prints it: pretty JSON and a final newline.
pub fn document(places: &[Vec<String>]) -> String {
    format!("{:#}\n", role(places))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_the_resource_groups() {
        let places = vec![vec!["s1".to_string(), "rg-a".to_string()]];
        let v = role(&places);
        assert_eq!(
            v["AssignableScopes"],
            json!(["/subscriptions/s1/resourceGroups/rg-a"])
        );
        assert!(document(&places).ends_with("]\n}\n"));
    }

    #[test]
    fn the_preflight_may_read_the_callers_permissions() {
        let v = role(&[vec!["s1".to_string(), "rg-a".to_string()]]);
        let actions = v["Actions"].as_array().unwrap();
        assert!(actions.contains(&json!("Microsoft.Authorization/permissions/read")));
        // and nothing else of Microsoft.Authorization: the job never changes roles
        let auth: Vec<&Value> = actions
            .iter()
            .filter(|a| {
                a.as_str()
                    .is_some_and(|a| a.starts_with("Microsoft.Authorization/"))
            })
            .collect();
        assert_eq!(auth.len(), 1, "{auth:?}");
    }
}
