//! gRPC onto WebAssembly components (see docs/grpc-mapping.md).

mod status;

pub use status::{Code, Status};

/// The `vimana:grpc` WIT package every gRPC component imports types from.
pub const GRPC_WIT: &str = include_str!("../wit/grpc.wit");
