//! An in-memory backend: each target's state held as the plugin's normalised objects, no
//! file and no cloud. It exists to show (and test) that planning, apply, staleness and
//! convergence need nothing from a cloud beyond its plugin's pure half; it also lets a
//! program embed intentwall without a state directory.

use super::{changed_under_us, fingerprint, Executed, Observed, Target};
use crate::diff::{apply_changes, Change};
use intentwall_contract::{NativeState, ProviderKind};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The store; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    states: Arc<Mutex<BTreeMap<(String, ProviderKind), NativeState>>>,
    writes: Arc<Mutex<usize>>,
}

impl Memory {
    /// An empty store: every target is new.
    pub fn new() -> Memory {
        Memory::default()
    }

    fn states(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, ProviderKind), NativeState>> {
        // a panic while holding the lock leaves whole states behind (each is replaced at
        // once), so a poisoned lock is still consistent
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Set a target's state, as a hand edit or another tool would.
    pub fn put(&self, deployment: &str, provider: ProviderKind, state: NativeState) {
        self.states()
            .insert((deployment.to_string(), provider), state);
    }

    /// A target's state, if it has one.
    pub fn get(&self, deployment: &str, provider: ProviderKind) -> Option<NativeState> {
        self.states()
            .get(&(deployment.to_string(), provider))
            .cloned()
    }

    /// Writes made through [`Memory::execute`] so far.
    pub fn writes(&self) -> usize {
        *self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The target's state.
    pub fn observe(&self, target: &Target) -> Observed {
        let key = (target.deployment.clone(), target.provider);
        let source = format!("memory:{target}").into();
        match self.states().get(&key) {
            Some(state) => Observed {
                fingerprint: fingerprint(state),
                state: state.clone(),
                existed: true,
                source,
            },
            None => Observed {
                state: NativeState::default(),
                fingerprint: "absent".into(),
                existed: false,
                source,
            },
        }
    }

    /// Apply a change set if the state still has the planned fingerprint.
    pub fn execute(
        &self,
        target: &Target,
        expected: &str,
        changes: &[Change],
    ) -> Result<Executed, crate::error::Error> {
        let mut states = self.states();
        let key = (target.deployment.clone(), target.provider);
        let now = states.get(&key).map_or("absent".into(), fingerprint);
        if now != expected {
            return Err(changed_under_us(
                &format!("memory:{target}"),
                expected,
                &now,
            ));
        }
        let before = states.get(&key).cloned().unwrap_or_default();
        let meant = apply_changes(&before, changes);
        states.insert(key, meant.clone());
        *self.writes.lock().unwrap_or_else(|p| p.into_inner()) += changes.len();
        Ok(Executed {
            writes: changes.len(),
            meant,
        })
    }
}
