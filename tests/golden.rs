//! Golden files: the native JSON each provider emits for the example estate, translated
//! against an empty state (so cloud-assigned ids play no part). Reviewed by eye once; any
//! change to a translator shows up here as a readable diff.
#![cfg(all(feature = "aws", feature = "azure", feature = "gcp"))]

use intentwall::intent::{load, LoadOptions};
use intentwall_contract::{NativeState, ProviderKind};

#[test]
fn example_estate_native_rules() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let intent = load(
        &root.join("intents"),
        &LoadOptions {
            today: time::macros::date!(2026 - 11 - 22),
        },
    )
    .unwrap()
    .intent;
    let mut counts = Vec::new();
    for dep in intent.deployments.values() {
        for kind in ProviderKind::ALL {
            let Some(di) = intentwall::graph::resolve(dep, kind) else {
                continue;
            };
            let p = intentwall::backend::require(kind).unwrap();
            let t = p.translate(&di, &NativeState::default());
            assert!(
                t.findings.is_empty(),
                "{}/{kind}: {:?}",
                dep.name,
                t.findings
            );
            let rules = t.objects.iter().filter(|o| !o.container).count();
            counts.push(format!(
                "{}/{kind}: {} flows (expanded {}) -> {rules} native rules",
                dep.name,
                dep.flows.len(),
                di.flows.len()
            ));
            let text = intentwall::backend::format(kind)
                .unwrap()
                .render_snapshot(&NativeState {
                    objects: t.objects,
                    envelope: None,
                });
            insta::assert_snapshot!(format!("{}_{kind}", dep.name), text);
        }
    }
    insta::assert_snapshot!("rule_counts", counts.join("\n"));
}
