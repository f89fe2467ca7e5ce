//! The intent language (DESIGN.md §1, §6): load the YAML of an intents directory, merge the
//! global files with each deployment's `regions/<deployment>/` overrides, check every name,
//! and give the effective [`Intent`] (one [`Deployment`] per deployment).
//!
//! ```text
//! intents/*.yaml ──load──> raw documents with positions ──merge──> Intent
//! intents/regions/<d>/*.yaml ──┘                                     │
//!                                          guardrails::check(&Intent) ┘──> findings
//! ```
//!
//! - [`load`] walks YAML nodes by hand ([`marked_yaml`]), so every problem carries
//!   `file:line:column`; the loader never stops at the first problem: one run reports every
//!   error, sorted by file, line and column ([`crate::diag`]).
//! - `merge` (internal) is order-independent: files are sorted by path, definitions are keyed
//!   by name, and a name defined twice anywhere in one scope is an error naming both places.
//! - [`guardrails`] checks the built-in guardrails on the effective intent.
//!
//! Decisions where DESIGN.md is short:
//! - Every file, region overrides included, must carry `version: 1`.
//! - A CIDR with host bits set (`10.0.0.5/24`) is an **error** whose message gives the
//!   network it would denote (`10.0.0.0/24`): silently truncating could widen or narrow a rule.
//!   A bare address is a `/32` or `/128`.
//! - Global definitions (networks, services, groups) may name only global things; region
//!   definitions may name global things and their own region's. A global flow or expectation
//!   applies in every deployment whose namespace has both its ends; a name unknown in every
//!   namespace it could apply in is an error.
//! - Groups and networks share one namespace (`from`/`to` name either); services have their
//!   own. A service reference is a name from `services:` first, else a token (`tcp/443`).
//! - Where a list is expected, a single value stands for a list of one.
//! - `drop` is only allowed in region overrides and names global flows; `deployments:` is
//!   only allowed on global flows; `deployments:` (the declaration) only in root files.
//! - Exceptions need `reason` and `expires`; an exception valid until today inclusive is
//!   fine, one whose `expires` is before today is an error.
//! - A region directory with no `*.yaml` file still has to name a deployment.
//! - Quoted scalars are text: `sensitive: "true"` is not a boolean.
//! - Flows carry their definition's `Loc` (the start of the flow item).

pub mod guardrails;
pub(crate) mod load;
pub(crate) mod merge;
pub mod model;

pub use model::*;

use crate::diag::{Diagnostic, Diagnostics};
use sha2::{Digest, Sha256};
use std::path::Path;

/// What loading depends on besides the files.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Today, for exception expiry (injectable so tests and plans are reproducible).
    pub today: time::Date,
}

impl LoadOptions {
    /// Options with today's UTC date.
    pub fn now() -> Self {
        LoadOptions {
            today: time::OffsetDateTime::now_utc().date(),
        }
    }
}

/// A successfully loaded intent, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective intent.
    pub intent: Intent,
    /// Warnings (never errors), sorted.
    pub warnings: Diagnostics,
}

/// Load and check the intents directory `dir`. On any error, every diagnostic of the run
/// (errors and warnings, sorted by file, line, column) is returned.
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    if !dir.is_dir() {
        return Err(Diagnostics(vec![Diagnostic::error(
            None,
            format!("intents directory {} does not exist", dir.display()),
        )]));
    }
    let files = load::read_dir(dir, &mut diags);
    if files.iter().all(|f| f.region.is_some()) && diags.is_empty() {
        diags.push(Diagnostic::error(
            None,
            format!("no intent files (*.yaml) at the root of {}", dir.display()),
        ));
    }
    let mut hasher = Sha256::new();
    for f in files.iter().filter(|f| !load::is_placeholder(f)) {
        let p = f.rel.to_string_lossy().replace('\\', "/");
        hasher.update((p.len() as u64).to_le_bytes());
        hasher.update(p.as_bytes());
        hasher.update((f.text.len() as u64).to_le_bytes());
        hasher.update(f.text.as_bytes());
    }
    let digest = hex(&hasher.finalize());
    let docs: Vec<load::RawDoc> = files.iter().map(|f| load::parse_file(f, &mut diags)).collect();
    let deployments = merge::merge(&docs, opts.today, &mut diags);
    let diags = Diagnostics(diags).sorted();
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Loaded {
        intent: Intent {
            digest,
            deployments,
        },
        warnings: diags,
    })
}

/// Load from in-memory files (`(path relative to the intents dir, text)`), for tests and
/// tools. Paths under `regions/<d>/` are region overrides.
pub fn load_files(files: &[(String, String)], opts: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let mut diags = Vec::new();
    let mut src: Vec<load::SourceFile> = files
        .iter()
        .map(|(p, t)| {
            let parts: Vec<&str> = p.split('/').collect();
            let region = (parts.len() == 3 && parts[0] == "regions").then(|| parts[1].to_string());
            load::SourceFile {
                rel: p.into(),
                region,
                text: t.clone(),
            }
        })
        .collect();
    src.sort_by(|a, b| a.rel.cmp(&b.rel));
    let mut hasher = Sha256::new();
    for f in &src {
        let p = f.rel.to_string_lossy().replace('\\', "/");
        hasher.update((p.len() as u64).to_le_bytes());
        hasher.update(p.as_bytes());
        hasher.update((f.text.len() as u64).to_le_bytes());
        hasher.update(f.text.as_bytes());
    }
    let digest = hex(&hasher.finalize());
    let docs: Vec<load::RawDoc> = src.iter().map(|f| load::parse_file(f, &mut diags)).collect();
    let deployments = merge::merge(&docs, opts.today, &mut diags);
    let diags = Diagnostics(diags).sorted();
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Loaded {
        intent: Intent {
            digest,
            deployments,
        },
        warnings: diags,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
