//! [`WasmRuntime`]: the daemon's Wasm service runtime, plugged into the core
//! as its [`ResourceObserver`]. Each reconcile loads what is new, drops what
//! is gone, swaps the gateway's route table and reports statuses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vimana_core::{ResourceObserver, available};
use vimana_gateway::{CancellationToken, Gateway};
use vimana_resources::{ResourceKind, ResourceSet, Status};

use crate::deploy::{Deployed, Loader};
use crate::listen::{Bound, ListenConfig, Listeners};
use crate::routes;

/// Default per-request deadline of a Server without `deadlineMs`.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);

/// The Wasm service runtime.
pub struct WasmRuntime {
    loader: Loader,
    gateway: Arc<Gateway>,
    state: Mutex<State>,
    listeners: Mutex<Listeners>,
    shutdown: CancellationToken,
}

#[derive(Default)]
struct State {
    /// Component name → (spec.image, loaded image).
    components: HashMap<String, (String, Arc<Deployed>)>,
    /// Loaded images by digest.
    by_digest: HashMap<String, Arc<Deployed>>,
}

impl WasmRuntime {
    pub fn new(loader: Loader, gateway: Arc<Gateway>, listen: ListenConfig) -> Self {
        let shutdown = CancellationToken::new();
        Self {
            loader,
            gateway,
            state: Mutex::new(State::default()),
            listeners: Mutex::new(Listeners::new(listen, shutdown.clone())),
            shutdown,
        }
    }

    /// The listeners' addresses, once bound.
    pub fn bound(&self) -> Option<Bound> {
        lock(&self.listeners).bound()
    }

    /// Stops the listeners (in-flight requests finish).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    fn reconcile_inner(&self, set: &ResourceSet) -> Vec<(ResourceKind, String, Status)> {
        let started = Instant::now();
        let mut out = Vec::new();
        let mut state = lock(&self.state);
        let State {
            components,
            by_digest,
        } = &mut *state;

        // Components: keep what is loaded with the same image, load the rest.
        let wanted: HashMap<String, &vimana_resources::Component> =
            set.components().map(|c| (c.component_name(), c)).collect();
        components
            .retain(|name, (image, _)| wanted.get(name).is_some_and(|c| &c.spec.image == image));
        // Why a Component is not loaded, for the calls its Server gets.
        let mut failed: HashMap<String, String> = HashMap::new();
        for (name, c) in &wanted {
            if let Some((_, d)) = components.get(name) {
                out.push(component_status(c, d));
                continue;
            }
            match self.loader.load(c, by_digest) {
                Ok(d) => {
                    out.push(component_status(c, &d));
                    components.insert(name.clone(), (c.spec.image.clone(), d));
                }
                Err((reason, message)) => {
                    tracing::warn!(component = %name, %reason, %message, "component not loaded");
                    failed.insert(
                        name.clone(),
                        format!("Component {}: {reason}: {message}", c.metadata.name),
                    );
                    out.push((
                        ResourceKind::Component,
                        c.metadata.name.clone(),
                        available("False", &reason, message),
                    ));
                }
            }
        }
        // Images no Component uses any more.
        by_digest.retain(|digest, _| components.values().any(|(_, d)| &d.digest == digest));

        let loaded: HashMap<String, Arc<Deployed>> = components
            .iter()
            .map(|(n, (_, d))| (n.clone(), Arc::clone(d)))
            .collect();
        let (table, mut statuses) = routes::build(set, &loaded, &failed);
        out.append(&mut statuses);
        let has_domains = !table.domains.is_empty();
        let routed = self.gateway.set_routes(table).map_err(|e| e.to_string());
        let listening = if has_domains {
            lock(&self.listeners).ensure(&self.gateway, &self.loader.rt)
        } else {
            lock(&self.listeners).bound().ok_or_else(String::new)
        };
        for (_, _, status) in out
            .iter_mut()
            .filter(|(k, _, _)| *k == ResourceKind::Vimana)
        {
            *status = match (&routed, &listening) {
                (Err(e), _) => available("False", "RoutesRejected", e.clone()),
                (Ok(()), Ok(bound)) => available(
                    "True",
                    "Serving",
                    format!("gateway on {}", bound.describe()),
                ),
                (Ok(()), Err(e)) if e.is_empty() => available(
                    "True",
                    "Idle",
                    "no Domain yet; the gateway listens once one is applied",
                ),
                (Ok(()), Err(e)) => available("False", "ListenFailed", e.clone()),
            };
        }
        tracing::info!(
            components = loaded.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "wasm services reconciled"
        );
        out
    }
}

impl ResourceObserver for WasmRuntime {
    fn reconcile(&self, set: &ResourceSet) -> Vec<(ResourceKind, String, Status)> {
        self.reconcile_inner(set)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn component_status(
    c: &vimana_resources::Component,
    d: &Deployed,
) -> (ResourceKind, String, Status) {
    let what = match &d.contract {
        Some(contract) => format!("gRPC services {}", contract.services().join(", ")),
        None => "wasi:http/incoming-handler".to_owned(),
    };
    (
        ResourceKind::Component,
        c.metadata.name.clone(),
        available("True", "Loaded", format!("{} serving {what}", d.digest)),
    )
}
