//! [`ResourceObserver`]: the seam through which a runtime (the Wasm host,
//! later) reports whether the applied resources are actually served.

use vimana_resources::{Condition, ResourceKind, ResourceSet, Status};

/// The condition type every stored resource carries.
pub const AVAILABLE: &str = "Available";

/// Reason of the default `Available=Unknown` when no observer is plugged in.
pub const NO_RUNTIME: &str = "NoRuntime";

/// Observes the applied resources and reports their status.
///
/// The core calls [`ResourceObserver::reconcile`] with the whole persisted
/// set after every successful apply or delete and once at daemon start
/// ([`crate::Core::reconcile_resources`]). It is called from a blocking
/// thread, one call at a time (resource writes are serialized), so it may
/// do real work (load components, bind listeners) before answering. Each
/// returned `(kind, metadata.name, status)` is stored, all in one
/// transaction, and shown by `vimana get`; resources it does not mention
/// keep their previous status. Plug one in with
/// [`crate::Core::with_resource_observer`].
pub trait ResourceObserver: Send + Sync + 'static {
    /// Makes the runtime match `set` and returns the observed statuses.
    fn reconcile(&self, set: &ResourceSet) -> Vec<(ResourceKind, String, Status)>;
}

/// `Available=<status>` with a reason and message.
pub fn available(status: &str, reason: &str, message: impl Into<String>) -> Status {
    Status {
        conditions: vec![Condition {
            type_: AVAILABLE.to_owned(),
            status: status.to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message.into()),
        }],
    }
}

/// The status of every resource while no observer is plugged in.
pub fn no_runtime() -> Status {
    available(
        "Unknown",
        NO_RUNTIME,
        "stored; no runtime serves resources in this daemon yet",
    )
}
