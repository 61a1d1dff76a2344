//! [`LoadedComponent`]: a compiled, classified, pre-linked component.

use std::sync::Arc;

use wasmtime::component::{Component, InstancePre};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::host::HostInner;
use crate::state::StoreState;
use crate::{HTTP_HANDLER_EXPORT_PREFIX, HostError};

/// What a component serves, decided from its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    /// Typed functions of exported interfaces, called with
    /// [`LoadedComponent::call_with`] (the gRPC gateway path).
    Grpc,
    /// Exports `wasi:http/incoming-handler@0.2.x`; served with
    /// [`LoadedComponent::handle_http`].
    Http,
}

/// The pre-linked form of a component, by kind.
pub(crate) enum Pre {
    /// Linked against WASI p2 (sync).
    Grpc(InstancePre<StoreState>),
    /// Linked against WASI p2 + `wasi:http` (async).
    Http(ProxyPre<StoreState>),
}

/// A compiled, pre-linked component. Each call gets a fresh instance in a
/// fresh store.
pub struct LoadedComponent {
    pub(crate) host: Arc<HostInner>,
    pub(crate) pre: Pre,
    exports: Vec<String>,
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("kind", &self.kind())
            .field("exports", &self.exports)
            .finish_non_exhaustive()
    }
}

impl LoadedComponent {
    /// Classifies `component` by its exports and pre-links it with the
    /// matching linker.
    pub(crate) fn new(host: Arc<HostInner>, component: &Component) -> Result<Self, HostError> {
        let exports: Vec<String> = component
            .component_type()
            .exports(&host.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let pre = if exports.iter().any(|e| is_http_handler(e)) {
            let pre = host
                .http_linker
                .instantiate_pre(component)
                .map_err(|e| HostError::Link(format!("{e:#}")))?;
            Pre::Http(ProxyPre::new(pre).map_err(|e| HostError::Link(format!("{e:#}")))?)
        } else {
            let pre = host
                .linker
                .instantiate_pre(component)
                .map_err(|e| HostError::Link(format!("{e:#}")))?;
            Pre::Grpc(pre)
        };
        Ok(Self { host, pre, exports })
    }

    /// Names of the component's exports (interfaces such as
    /// `foo:bar/adder-service` or `wasi:http/incoming-handler@0.2.12`, and
    /// any top-level functions).
    pub fn exports(&self) -> Vec<String> {
        self.exports.clone()
    }

    /// Whether this is an HTTP or a gRPC-style component.
    pub fn kind(&self) -> ComponentKind {
        match self.pre {
            Pre::Grpc(_) => ComponentKind::Grpc,
            Pre::Http(_) => ComponentKind::Http,
        }
    }
}

/// Whether an export name is a `wasi:http/incoming-handler@0.2.x`.
fn is_http_handler(name: &str) -> bool {
    name.starts_with(HTTP_HANDLER_EXPORT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_handler_names() {
        assert!(is_http_handler("wasi:http/incoming-handler@0.2.0"));
        assert!(is_http_handler("wasi:http/incoming-handler@0.2.12"));
        assert!(!is_http_handler("wasi:http/incoming-handler@0.3.0"));
        assert!(!is_http_handler("foo:bar/adder-service"));
    }
}
