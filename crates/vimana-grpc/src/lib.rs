//! gRPC onto WebAssembly components (see docs/grpc-mapping.md).
//!
//! A [`Contract`] is built from a protobuf `FileDescriptorSet` and maps each
//! gRPC method onto a component function dynamically: requests decode into
//! [`wasmtime::component::Val`]s, function results encode back into
//! protobuf or JSON, and [`Contract::wit`] writes the WIT a component
//! implements. No per-service code is generated.

mod contract;
mod error;
mod from_val;
mod layout;
mod method;
pub mod naming;
mod openapi;
mod status;
mod to_val;
mod wirepath;
mod wit;

pub use contract::{Contract, compile_protos};
pub use error::MapError;
pub use method::{MethodMap, status_from_val};
pub use status::{Code, Status};
pub use to_val::{DECODE_BASE, DECODE_EXPANSION, decode_bound};

/// The `vimana:grpc` WIT package every gRPC component imports types from.
pub const GRPC_WIT: &str = include_str!("../wit/grpc.wit");
