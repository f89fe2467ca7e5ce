//! (observed, desired) -> change set. Pure and provider-neutral: objects are matched by key
//! and compared by canonical body, so equivalent spellings never show up as changes.
//!
//! Five actions, as in Terraform: create, update, replace, delete, no-op. The order of a change
//! set is make-before-break: containers are created first, then rules, then in-place updates
//! and replacements, and only then are rules and finally containers deleted, so a target
//! never loses a rule it keeps and a rule changing in place is never absent in between.

use intentwall_contract::{InPlace, NativeObject, NativeState, Provider};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What happens to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// New object.
    Create,
    /// Changed in place.
    Update,
    /// Deleted and created again (an immutable field changed).
    Replace,
    /// Removed.
    Delete,
}

impl Action {
    /// Terraform-like marker.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// One change to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What happens.
    pub action: Action,
    /// The object's key.
    pub key: String,
    /// The object before (update, replace, delete).
    pub before: Option<NativeObject>,
    /// The object after (create, update, replace).
    pub after: Option<NativeObject>,
}

impl Change {
    /// The object as it is after, or before for a delete.
    pub fn object(&self) -> &NativeObject {
        self.after
            .as_ref()
            .or(self.before.as_ref())
            .expect("a change has an object")
    }
    /// Make-before-break rank.
    fn rank(&self) -> u8 {
        let container = self.object().container;
        match (self.action, container) {
            (Action::Create, true) => 0,
            (Action::Create, false) => 1,
            (Action::Update, _) => 2,
            (Action::Replace, _) => 3,
            (Action::Delete, false) => 4,
            (Action::Delete, true) => 5,
        }
    }
}

/// The changes that turn `observed` into `desired`, in make-before-break order, and the number
/// of objects left as they are.
pub fn diff(
    provider: &dyn Provider,
    observed: &NativeState,
    desired: &NativeState,
) -> (Vec<Change>, usize) {
    let before: BTreeMap<&str, &NativeObject> = observed
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o))
        .collect();
    let after: BTreeMap<&str, &NativeObject> = desired
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o))
        .collect();
    let mut changes = Vec::new();
    let mut unchanged = 0;
    for (k, a) in &after {
        match before.get(k) {
            None => changes.push(Change {
                action: Action::Create,
                key: k.to_string(),
                before: None,
                after: Some((*a).clone()),
            }),
            Some(b) if b.body == a.body && b.managed == a.managed => unchanged += 1,
            Some(b) => changes.push(Change {
                action: match provider.in_place(b, a) {
                    InPlace::Update => Action::Update,
                    InPlace::Replace => Action::Replace,
                },
                key: k.to_string(),
                before: Some((*b).clone()),
                after: Some((*a).clone()),
            }),
        }
    }
    for (k, b) in &before {
        if !after.contains_key(k) {
            changes.push(Change {
                action: Action::Delete,
                key: k.to_string(),
                before: Some((*b).clone()),
                after: None,
            });
        }
    }
    changes.sort_by(|x, y| x.rank().cmp(&y.rank()).then_with(|| x.key.cmp(&y.key)));
    (changes, unchanged)
}

/// Apply a change set to a state, in order: what a backend does, as a pure function. Objects
/// keep their observed position; new ones go after their parent's last child (or at the end).
pub fn apply_changes(observed: &NativeState, changes: &[Change]) -> NativeState {
    let mut objects = observed.objects.clone();
    for c in changes {
        match c.action {
            Action::Create => {
                let obj = c.after.clone().expect("create has after");
                let pos = obj
                    .parent
                    .as_ref()
                    .and_then(|p| {
                        objects
                            .iter()
                            .rposition(|o| o.key == *p || o.parent.as_deref() == Some(p))
                    })
                    .map(|i| i + 1)
                    .unwrap_or(objects.len());
                objects.insert(pos, obj);
            }
            Action::Update | Action::Replace => {
                let obj = c.after.clone().expect("update has after");
                match objects.iter_mut().find(|o| o.key == c.key) {
                    Some(slot) => *slot = obj,
                    None => objects.push(obj),
                }
            }
            Action::Delete => objects.retain(|o| o.key != c.key),
        }
    }
    NativeState {
        objects,
        envelope: observed.envelope.clone(),
    }
}
