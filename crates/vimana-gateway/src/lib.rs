//! The gateway in front of Wasm component services.
//!
//! It knows nothing about Wasm: services are [`GrpcBackend`]s and
//! [`HttpBackend`]s behind a route table ([`Routes`]) that
//! [`Gateway::set_routes`] swaps atomically. A request is routed by TLS SNI
//! and `:authority`/`Host` to a [`DomainRoute`], then by path:
//!
//! - gRPC (`content-type: application/grpc*`, `/<service>/<method>`): server
//!   reflection v1/v1alpha, or a service version chosen at random by
//!   weight; unknown services answer `UNIMPLEMENTED`.
//! - `GET /.well-known/schema.json` and JSON transcoding
//!   (`POST /<service>/<method>`, `application/json`) when the domain has
//!   an OpenAPI document.
//! - anything else goes to the domain's plain HTTP component, or `404`.
//!
//! An unknown host gets `grpc-status: 5` (NOT_FOUND) for gRPC and `404`
//! otherwise. Every answer from a version carries `vimana-component`.

mod backend;
mod body;
mod budget;
mod ca;
mod call;
mod dispatch;
mod error;
mod gateway;
mod grpc;
mod reflection;
mod routes;
mod serve;
mod table;
mod tls;
mod web;

pub use backend::{BackendFuture, GrpcBackend, HttpBackend};
pub use body::{BoxError, GatewayBody};
pub use ca::{CA_COMMON_NAME, LocalCa};
pub use dispatch::SCHEMA_PATH;
pub use error::GatewayError;
pub use gateway::{
    DEFAULT_DECODE_MEMORY_PER_CONNECTION, DEFAULT_DECODE_MEMORY_TOTAL, DEFAULT_MAX_REQUEST_BYTES,
    Gateway, GatewayConfig,
};
pub use grpc::{COMPONENT_HEADER, parse_timeout, read_message};
pub use reflection::{V1_SERVICE, V1ALPHA_SERVICE};
pub use routes::{DomainRoute, ReflectionPolicy, Routes, ServerRoute, TlsMaterial, VersionRoute};
pub use tokio_util::sync::CancellationToken;
pub use vimana_grpc::{Code, Status};
