//! The gateway value: configuration plus the atomically swapped route
//! table.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use vimana_listen::ConnLimits;

use crate::budget::Budget;
use crate::ca::LocalCa;
use crate::error::GatewayError;
use crate::routes::Routes;
use crate::table::Table;

/// The default limit of a request message or body: 4 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The default in-flight decode memory of one connection: 512 MiB.
pub const DEFAULT_DECODE_MEMORY_PER_CONNECTION: usize = 512 << 20;
/// The default in-flight decode memory of the gateway: 1 GiB.
pub const DEFAULT_DECODE_MEMORY_TOTAL: usize = 1 << 30;

/// How the gateway serves.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The largest gRPC request message, JSON or HTTP request body.
    pub max_request_bytes: usize,
    /// How long past a call's deadline the gateway still waits for the
    /// backend before answering `DEADLINE_EXCEEDED` itself.
    pub deadline_grace: Duration,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// In-flight decode memory of one connection: requests whose
    /// `vimana_grpc::decode_bound` does not fit are RESOURCE_EXHAUSTED.
    pub decode_memory_per_connection: usize,
    /// In-flight decode memory of the whole gateway.
    pub decode_memory_total: usize,
    /// Connection cap, header-read and idle timeouts, HTTP/2 keepalive of
    /// both listeners (each listener has its own cap).
    pub connections: ConnLimits,
    /// Issues certificates for domains without their own TLS material;
    /// without it such domains cannot be reached over TLS.
    pub local_ca: Option<Arc<LocalCa>>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            deadline_grace: Duration::from_millis(200),
            handshake_timeout: Duration::from_secs(10),
            connections: ConnLimits::default(),
            decode_memory_per_connection: DEFAULT_DECODE_MEMORY_PER_CONNECTION,
            decode_memory_total: DEFAULT_DECODE_MEMORY_TOTAL,
            local_ca: None,
        }
    }
}

/// State shared by every connection.
pub(crate) struct Inner {
    pub(crate) config: GatewayConfig,
    pub(crate) table: ArcSwap<Table>,
    pub(crate) decode: Budget,
}

/// The gateway: cheap to clone, every clone serves the same route table.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway with an empty route table.
    pub fn new(config: GatewayConfig) -> Gateway {
        Gateway {
            inner: Arc::new(Inner {
                decode: Budget::new(
                    config.decode_memory_total,
                    "the gateway's in-flight decode memory",
                    "[gateway] decode_memory_total",
                ),
                config,
                table: ArcSwap::from_pointee(Table::default()),
            }),
        }
    }

    /// Replaces the route table at once. Requests in flight finish on the
    /// routes they started with. Fails (keeping the old table) when a
    /// domain's TLS material or descriptor sets are unusable.
    pub fn set_routes(&self, routes: Routes) -> Result<(), GatewayError> {
        let table = Table::compile(routes)?;
        self.inner.table.store(Arc::new(table));
        Ok(())
    }

    /// The gateway's configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }
}
