//! (observed, desired) -> change set. Pure and provider-neutral: objects are matched by key
//! and compared by canonical body, so equivalent spellings never show up as changes.
//!
//! Five actions, as in Terraform: create, update, replace, delete, no-op. The order of a change
//! set is make-before-break: containers are created first, then rules, then in-place updates
//! and replacements, and only then are rules and finally containers deleted, so a target
//! never loses a rule it keeps and a rule changing in place is never absent in between.

use intentwall_contract::{InPlace, NativeObject, NativeState, Provider};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;

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
    changes_between(
        provider,
        observed,
        desired.objects.iter().map(Cow::Borrowed).collect(),
    )
}

/// [`diff`] taking the desired state by value: its objects move into the changes instead of
/// being copied (planning a large target, where every rule may be new).
pub fn diff_owned(
    provider: &dyn Provider,
    observed: &NativeState,
    desired: NativeState,
) -> (Vec<Change>, usize) {
    changes_between(
        provider,
        observed,
        desired.objects.into_iter().map(Cow::Owned).collect(),
    )
}

fn changes_between(
    provider: &dyn Provider,
    observed: &NativeState,
    desired: Vec<Cow<'_, NativeObject>>,
) -> (Vec<Change>, usize) {
    // matched by key through hash maps (a key given twice counts once, the last); the final
    // sort gives the order
    let before: HashMap<&str, &NativeObject> = observed
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o))
        .collect();
    let mut changes = Vec::new();
    let last = {
        let after: HashMap<&str, usize> = desired
            .iter()
            .enumerate()
            .map(|(i, o)| (o.key.as_str(), i))
            .collect();
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
        let mut last = vec![false; desired.len()];
        for &i in after.values() {
            last[i] = true;
        }
        last
    };
    let mut unchanged = 0;
    for (a, last) in desired.into_iter().zip(last) {
        if !last {
            continue;
        }
        match before.get(a.key.as_str()) {
            None => changes.push(Change {
                action: Action::Create,
                key: a.key.clone(),
                before: None,
                after: Some(a.into_owned()),
            }),
            Some(b) if b.body == a.body && b.managed == a.managed => unchanged += 1,
            Some(b) => changes.push(Change {
                action: match provider.in_place(b, &a) {
                    InPlace::Update => Action::Update,
                    InPlace::Replace => Action::Replace,
                },
                key: a.key.clone(),
                before: Some((*b).clone()),
                after: Some(a.into_owned()),
            }),
        }
    }
    // a change is large (two objects inline): sort positions, then move each change once
    let mut order: Vec<usize> = (0..changes.len()).collect();
    order.sort_unstable_by(|&x, &y| {
        let (x, y) = (&changes[x], &changes[y]);
        x.rank().cmp(&y.rank()).then_with(|| x.key.cmp(&y.key))
    });
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    let changes = order.into_iter().filter_map(|i| slots[i].take()).collect();
    (changes, unchanged)
}

/// Apply a change set to a state, in order: what a backend does, as a pure function. Objects
/// keep their observed position; a new one goes right after the last object of its parent
/// (the parent itself or its last child so far), or at the end when it has no parent there;
/// an update of a missing object goes at the end.
///
/// Linear in objects and changes: observed objects are slots found by key, and each slot
/// holds the objects created right after it, so nothing is searched or shifted per change
/// (the vector inserts and rescans this replaced were quadratic in a target's size). Same
/// result as inserting into the vector one change at a time whenever parents are
/// containers without parents of their own, as in every provider's state.
pub fn apply_changes(observed: &NativeState, changes: &[Change]) -> NativeState {
    /// One object (borrowed until the result is built), the next slot holding the same key
    /// (keys are unique in practice, but a delete removes every object of its key), and the
    /// objects created directly after it, the latest first in order.
    struct Slot<'a> {
        obj: Option<&'a NativeObject>,
        /// What the cloud assigned to the object this one updates in place.
        assigned: Option<&'a intentwall_contract::Body>,
        same_key: Option<usize>,
        after: Vec<usize>,
    }
    struct Slots<'a> {
        slots: Vec<Slot<'a>>,
        /// Top-level order: the observed objects, then whatever went to the end.
        top: Vec<usize>,
        /// First and last slot of each key.
        by_key: HashMap<&'a str, (usize, usize)>,
        /// The last slot that is, or belongs to, each key: where a new child goes after.
        last_of: HashMap<&'a str, usize>,
    }
    impl<'a> Slots<'a> {
        /// Add a slot; `at_end` puts it last of all (it is then the last of its key and
        /// parent), else the caller places it.
        fn add(&mut self, obj: &'a NativeObject, at_end: bool) -> usize {
            let i = self.slots.len();
            self.slots.push(Slot {
                obj: Some(obj),
                assigned: None,
                same_key: None,
                after: Vec::new(),
            });
            match self.by_key.get_mut(obj.key.as_str()) {
                Some((_, last)) => {
                    self.slots[*last].same_key = Some(i);
                    *last = i;
                }
                None => {
                    self.by_key.insert(&obj.key, (i, i));
                }
            }
            if at_end {
                self.top.push(i);
                self.last_of.insert(&obj.key, i);
            } else {
                self.last_of.entry(&obj.key).or_insert(i);
            }
            if let Some(p) = &obj.parent {
                self.last_of.insert(p, i);
            }
            i
        }
    }
    let size = observed.objects.len() + changes.len();
    let mut st = Slots {
        slots: Vec::with_capacity(size),
        top: Vec::with_capacity(size),
        by_key: HashMap::with_capacity(size),
        last_of: HashMap::with_capacity(size),
    };
    for o in &observed.objects {
        st.add(o, true);
    }
    for c in changes {
        match (c.action, c.after.as_ref()) {
            (Action::Delete, _) => {
                let mut next = st.by_key.remove(c.key.as_str()).map(|(first, _)| first);
                while let Some(i) = next {
                    st.slots[i].obj = None;
                    next = st.slots[i].same_key;
                }
            }
            // a create or update without its object (a malformed plan file) changes nothing
            (_, None) => {}
            (Action::Create, Some(obj)) => {
                match obj
                    .parent
                    .as_deref()
                    .and_then(|p| st.last_of.get(p).copied())
                {
                    Some(a) => {
                        let i = st.add(obj, false);
                        st.slots[a].after.push(i);
                    }
                    None => {
                        st.add(obj, true);
                    }
                }
            }
            (Action::Update | Action::Replace, Some(obj)) => {
                match st.by_key.get(c.key.as_str()).map(|&(first, _)| first) {
                    Some(i) => {
                        // what the cloud assigned stays with an object updated in place
                        if c.action == Action::Update && obj.assigned.is_none() {
                            st.slots[i].assigned =
                                st.slots[i].obj.and_then(|o| o.assigned.as_ref());
                        }
                        st.slots[i].obj = Some(obj);
                    }
                    None => {
                        st.add(obj, true);
                    }
                }
            }
        }
    }
    // read out: each slot, then what was created after it, the latest creation first (it
    // went directly after the slot, in front of the earlier ones)
    let mut objects = Vec::with_capacity(st.slots.len());
    let mut stack: Vec<usize> = st.top.iter().rev().copied().collect();
    while let Some(i) = stack.pop() {
        stack.extend(st.slots[i].after.iter().copied());
        if let Some(o) = st.slots[i].obj {
            let mut o = o.clone();
            if let Some(a) = st.slots[i].assigned {
                o.assigned = Some(a.clone());
            }
            objects.push(o);
        }
    }
    NativeState {
        objects,
        envelope: observed.envelope.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intentwall_contract::{DeploymentIntent, EvalPolicy, Translation};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A provider stand-in: only `in_place` matters to the diff.
    struct Plain;
    impl Provider for Plain {
        fn kind(&self) -> intentwall_contract::ProviderKind {
            intentwall_contract::ProviderKind::Gcp
        }
        fn translate(&self, _: &DeploymentIntent, _: &NativeState) -> Translation {
            Translation::default()
        }
        fn lower(&self, _: &NativeState, _: &DeploymentIntent) -> EvalPolicy {
            EvalPolicy::default()
        }
        fn in_place(&self, b: &NativeObject, a: &NativeObject) -> InPlace {
            if b.body.value()["direction"] == a.body.value()["direction"] {
                InPlace::Update
            } else {
                InPlace::Replace
            }
        }
    }

    fn obj(key: u8, container: bool, body: u8, dir: bool) -> NativeObject {
        NativeObject {
            kind: if container { "box" } else { "rule" }.into(),
            key: if container {
                format!("c{key}")
            } else {
                format!("c{}/r{key}", key % 3)
            },
            parent: (!container).then(|| format!("c{}", key % 3)),
            container,
            managed: true,
            foreign: false,
            flow: None,
            body: serde_json::json!({ "v": body, "direction": dir }).into(),
            raw: None,
            assigned: None,
            summary: String::new(),
        }
    }

    fn state() -> impl Strategy<Value = NativeState> {
        proptest::collection::btree_map((0u8..12, any::<bool>()), (0u8..3, any::<bool>()), 0..12)
            .prop_map(|m| NativeState {
                objects: m
                    .into_iter()
                    .map(|((k, c), (b, d))| obj(k, c, b, d))
                    .collect(),
                envelope: None,
            })
    }

    /// `apply_changes` as it was: one vector insert, search or retain per change.
    fn apply_by_vector(observed: &NativeState, changes: &[Change]) -> NativeState {
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

    /// A state as a provider would read it, in any order: containers without parents, rules
    /// under a container that may or may not be there.
    fn shuffled_state() -> impl Strategy<Value = NativeState> {
        (state(), any::<u64>()).prop_map(|(mut s, seed)| {
            let mut x = seed | 1;
            for i in (1..s.objects.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.objects.swap(i, (x % (i as u64 + 1)) as usize);
            }
            s
        })
    }

    fn bodies(s: &NativeState) -> BTreeMap<String, intentwall_contract::Body> {
        s.objects
            .iter()
            .map(|o| (o.key.clone(), o.body.clone()))
            .collect()
    }

    proptest! {
        #[test]
        fn applying_the_diff_reaches_the_desired_state(before in state(), after in state()) {
            let (changes, unchanged) = diff(&Plain, &before, &after);
            let reached = apply_changes(&before, &changes);
            prop_assert_eq!(bodies(&reached), bodies(&after));
            prop_assert_eq!(changes.len() + unchanged, bodies(&before).keys().chain(bodies(&after).keys()).collect::<std::collections::BTreeSet<_>>().len());
            // a second diff is empty: idempotent
            prop_assert!(diff(&Plain, &reached, &after).0.is_empty());
            // make before break: no create or update after any delete, containers deleted last
            let ranks: Vec<u8> = changes.iter().map(|c| c.rank()).collect();
            prop_assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
        }

        /// Diffing an owned desired state gives exactly the borrowed diff.
        #[test]
        fn diff_owned_equals_diff(before in shuffled_state(), after in shuffled_state()) {
            prop_assert_eq!(diff_owned(&Plain, &before, after.clone()), diff(&Plain, &before, &after));
        }

        /// The slot-based apply puts every object where the vector inserts put it, for any
        /// change set the diff makes.
        #[test]
        fn apply_by_slots_equals_apply_by_vector(before in shuffled_state(), after in shuffled_state()) {
            let (changes, _) = diff(&Plain, &before, &after);
            let keys = |s: &NativeState| s.objects.iter().map(|o| (o.key.clone(), o.body.clone())).collect::<Vec<_>>();
            prop_assert_eq!(keys(&apply_changes(&before, &changes)), keys(&apply_by_vector(&before, &changes)));
        }

        #[test]
        fn replace_only_when_the_provider_says_so(b in 0u8..3, a in 0u8..3, d1 in any::<bool>(), d2 in any::<bool>()) {
            let before = NativeState { objects: vec![obj(1, false, b, d1)], envelope: None };
            let after = NativeState { objects: vec![obj(1, false, a, d2)], envelope: None };
            let (changes, _) = diff(&Plain, &before, &after);
            if a == b && d1 == d2 {
                prop_assert!(changes.is_empty());
            } else {
                let want = if d1 == d2 { Action::Update } else { Action::Replace };
                prop_assert_eq!(changes[0].action, want);
            }
        }
    }
}
