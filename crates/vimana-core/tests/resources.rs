//! Resources as core state: validation against the stored set, all or
//! nothing, idempotence, immutable versions, delete conflicts, the observer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use vimana_api::{Action, ActionOutcome, ApiError, ChangeKind, ResourceQuery};
use vimana_core::{Core, CoreApi, LogBook, ResourceObserver, available};
use vimana_resources::{Resource, ResourceKind, ResourceRef, ResourceSet, Status, parse_documents};
use vimana_store::Store;

const ADDER: &str = include_str!("../../vimana-resources/examples/adder.yaml");
const ID: &str = "00000000000000000000000000000001";

fn core(dir: &std::path::Path) -> Core {
    let store = Store::open(&dir.join("state.redb")).unwrap();
    let logs = LogBook::new(dir.join("logs"), Default::default()).unwrap();
    Core::new(store, logs, Vec::new(), Default::default())
}

fn docs(yaml: &str) -> Vec<Resource> {
    parse_documents("test.yaml", yaml).unwrap()
}

async fn apply(core: &Core, yaml: &str) -> Result<Vec<(String, ChangeKind)>, ApiError> {
    match core
        .handle(Action::ApplyResources {
            resources: docs(yaml),
        })
        .await?
    {
        ActionOutcome::ResourceChanges(list) => Ok(list
            .changes
            .into_iter()
            .map(|c| (format!("{}/{}", c.kind, c.name), c.change))
            .collect()),
        other => panic!("unexpected {other:?}"),
    }
}

async fn get(
    core: &Core,
    kind: Option<ResourceKind>,
    name: Option<&str>,
) -> Result<Vec<Resource>, ApiError> {
    let query = ResourceQuery {
        kind,
        name: name.map(str::to_owned),
    };
    match core.handle(Action::GetResources { query }).await? {
        ActionOutcome::Resources(list) => Ok(list),
        other => panic!("unexpected {other:?}"),
    }
}

async fn delete(core: &Core, refs: &[(ResourceKind, &str)]) -> Result<usize, ApiError> {
    let refs = refs
        .iter()
        .map(|(kind, name)| ResourceRef {
            kind: *kind,
            name: (*name).to_owned(),
        })
        .collect();
    match core.handle(Action::DeleteResources { refs }).await? {
        ActionOutcome::ResourceChanges(list) => Ok(list.changes.len()),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn apply_creates_then_reapply_is_unchanged_and_status_defaults_to_no_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    let changes = apply(&core, ADDER).await.unwrap();
    assert_eq!(changes.len(), 4);
    assert!(
        changes.iter().all(|(_, c)| *c == ChangeKind::Created),
        "{changes:?}"
    );
    let again = apply(&core, ADDER).await.unwrap();
    assert!(
        again.iter().all(|(_, c)| *c == ChangeKind::Unchanged),
        "{again:?}"
    );

    let all = get(&core, None, None).await.unwrap();
    assert_eq!(all.len(), 4);
    let cond = &all[0].status().unwrap().conditions[0];
    assert_eq!(
        (cond.type_.as_str(), cond.status.as_str()),
        ("Available", "Unknown")
    );
    assert_eq!(cond.reason.as_deref(), Some("NoRuntime"));

    // Components by metadata.name and by <domain>:<server>@<version>.
    let by_name = get(&core, Some(ResourceKind::Component), Some("adder-1.0.0"))
        .await
        .unwrap();
    let by_cname = get(
        &core,
        Some(ResourceKind::Component),
        Some(&format!("{ID}:adder@1.0.0")),
    )
    .await
    .unwrap();
    assert_eq!(by_name, by_cname);
    let err = get(&core, Some(ResourceKind::Domain), Some("nope"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404);
    assert!(err.to_string().contains("vimana get domains"), "{err}");

    // A changed spec is "configured".
    let changed = ADDER.replace("- example.com", "- example.org");
    let changes = apply(&core, &changed).await.unwrap();
    assert!(
        changes.contains(&("Domain/example".to_owned(), ChangeKind::Configured)),
        "{changes:?}"
    );
}

#[tokio::test]
async fn invalid_apply_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    // The Server's versionWeights name 2.0.0, which has no Component: the
    // three valid documents are not stored either.
    let bad = ADDER.replace("\"1.0.0\": 1", "\"2.0.0\": 1");
    let err = apply(&core, &bad).await.unwrap_err();
    assert_eq!(err.status(), 422);
    let msg = err.to_string();
    assert!(
        msg.contains("test.yaml document 3") && msg.contains("missing-component"),
        "{msg}"
    );
    assert!(get(&core, None, None).await.unwrap().is_empty());

    // A reference to a Domain that is not stored.
    let server_only: String = ADDER
        .split("---")
        .nth(2)
        .unwrap()
        .replace("\"1.0.0\": 1", "");
    let err = apply(&core, &server_only.replace("versionWeights:", ""))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown-reference"), "{err}");
}

#[tokio::test]
async fn component_versions_are_immutable() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    apply(&core, ADDER).await.unwrap();
    let other = ADDER.replace("release/adder.wasm", "release/other.wasm");
    let err = apply(&core, &other).await.unwrap_err();
    assert!(err.to_string().contains("immutable-version"), "{err}");
    let c = get(&core, Some(ResourceKind::Component), Some("adder-1.0.0"))
        .await
        .unwrap();
    let Resource::Component(c) = &c[0] else {
        panic!("not a component")
    };
    assert!(c.spec.image.ends_with("adder.wasm"));
}

#[tokio::test]
async fn delete_refuses_while_used_and_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    apply(&core, ADDER).await.unwrap();
    let err = delete(&core, &[(ResourceKind::Domain, "example")])
        .await
        .unwrap_err();
    assert_eq!(err.status(), 409);
    let msg = err.to_string();
    assert!(
        msg.contains("Server/adder") && msg.contains("Component/adder-1.0.0"),
        "{msg}"
    );
    assert_eq!(get(&core, None, None).await.unwrap().len(), 4);

    let err = delete(
        &core,
        &[
            (ResourceKind::Server, "adder"),
            (ResourceKind::Vimana, "nope"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), 404);
    assert_eq!(get(&core, None, None).await.unwrap().len(), 4);

    // Everything at once, the Component by its component name.
    let cname = format!("{ID}:adder@1.0.0");
    let n = delete(
        &core,
        &[
            (ResourceKind::Domain, "example"),
            (ResourceKind::Vimana, "local"),
            (ResourceKind::Server, "adder"),
            (ResourceKind::Component, &cname),
        ],
    )
    .await
    .unwrap();
    assert_eq!(n, 4);
    assert!(get(&core, None, None).await.unwrap().is_empty());
}

struct Recorder(Mutex<Vec<usize>>);

impl ResourceObserver for Recorder {
    fn reconcile(&self, set: &ResourceSet) -> Vec<(ResourceKind, String, Status)> {
        self.0.lock().unwrap().push(set.len());
        set.servers()
            .map(|s| {
                (
                    ResourceKind::Server,
                    s.metadata.name.clone(),
                    available("True", "Serving", "up"),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn observer_statuses_are_stored_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(Recorder(Mutex::new(Vec::new())));
    {
        let core = core(dir.path()).with_resource_observer(rec.clone());
        apply(&core, ADDER).await.unwrap();
        let s = get(&core, Some(ResourceKind::Server), Some("adder"))
            .await
            .unwrap();
        assert_eq!(s[0].status().unwrap().conditions[0].status, "True");
        let d = get(&core, Some(ResourceKind::Domain), Some("example"))
            .await
            .unwrap();
        assert_eq!(
            d[0].status().unwrap().conditions[0].reason.as_deref(),
            Some("NoRuntime")
        );
        delete(&core, &[(ResourceKind::Component, "adder-1.0.0")])
            .await
            .unwrap_err();
    }
    assert_eq!(*rec.0.lock().unwrap(), vec![4]);
    // A new core on the same store: reconciled once at start.
    let core = core(dir.path()).with_resource_observer(rec.clone());
    assert_eq!(core.reconcile_resources().await.unwrap(), 4);
    assert_eq!(*rec.0.lock().unwrap(), vec![4, 4]);
    let s = get(&core, Some(ResourceKind::Server), Some("adder"))
        .await
        .unwrap();
    assert_eq!(
        s[0].status().unwrap().conditions[0].reason.as_deref(),
        Some("Serving")
    );
}
