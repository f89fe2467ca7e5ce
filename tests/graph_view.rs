//! The example estate through the service graph: each deployment's view resolves, on every
//! cloud, to the providers' input that `Deployment::resolve` derives from the model.

use intentwall::graph::ServiceGraph;
use intentwall::intent::{load, LoadOptions};
use intentwall_contract::ProviderKind;

#[test]
fn example_views_resolve_like_the_model() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let intent = load(
        &root.join("intents"),
        &LoadOptions {
            today: time::macros::date!(2026 - 03 - 15),
        },
    )
    .unwrap()
    .intent;
    let graph = ServiceGraph::of(&intent);
    let mut resolved = 0;
    for dep in intent.deployments.values() {
        let view = graph.view(&dep.name).unwrap();
        for kind in ProviderKind::ALL {
            let want = dep.resolve(kind);
            resolved += usize::from(want.is_some());
            assert_eq!(view.resolve(kind), want, "{}/{kind}", dep.name);
        }
    }
    assert!(resolved >= 3, "the example estate uses every cloud");
}
