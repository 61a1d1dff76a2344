//! The adder example: the gRPC service `foo.bar.AdderService/AddFloats` as a
//! WebAssembly component, built from source on any host (see README.md).
//!
//! The component is a hand-written core module (`adder.wat`) implementing
//! the export `foo:bar/adder-service#add-floats` per the canonical ABI of
//! `wit/adder.wit`, encoded with wit-component. [`component`] builds the
//! real adder; [`build`] builds it with another [`Behaviour`] (loops, memory
//! hogs, traps, error statuses, shifted results) for tests of the host and
//! the gateway. [`descriptor_set`] compiles `adder.proto` for the gateway's
//! transcoding and reflection.
//!
//! ```
//! let wasm = adder::component()?;
//! assert_eq!(&wasm[..4], b"\0asm");
//! # Ok::<(), adder::BuildError>(())
//! ```

mod behaviour;
mod encode;

use std::path::Path;

pub use behaviour::{Behaviour, CODE_CASES, MAX_MESSAGE_LEN, WAT, module_wat};
pub use encode::{WORLD, component_from_wat, resolve};

/// `adder.proto`: the service definition.
pub const PROTO: &str = include_str!("../adder.proto");

/// The file name of [`PROTO`] in [`descriptor_set`].
pub const PROTO_FILE: &str = "adder.proto";

/// `wit/adder.wit`: the WIT package `foo:bar` generated from [`PROTO`].
pub const WIT: &str = include_str!("../wit/adder.wit");

/// The `vimana:grpc@0.1.0` package `wit/adder.wit` uses types from (the
/// same file as `vimana_grpc::GRPC_WIT`).
pub const GRPC_WIT: &str = include_str!("../../../crates/vimana-grpc/wit/grpc.wit");

/// The fully qualified gRPC service name.
pub const SERVICE: &str = "foo.bar.AdderService";

/// The exported component interface implementing [`SERVICE`].
pub const INTERFACE: &str = "foo:bar/adder-service";

/// The function of [`INTERFACE`] implementing `AddFloats`.
pub const FUNCTION: &str = "add-floats";

/// Failure to build the component or the descriptor set.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// [`Behaviour::Fail`] with a code that is not a `vimana:grpc` code.
    #[error("status code {0} is not a gRPC code (0..=16)")]
    InvalidCode(u8),
    /// [`Behaviour::Fail`] with a message longer than [`MAX_MESSAGE_LEN`].
    #[error("status message of {0} bytes is longer than {MAX_MESSAGE_LEN}")]
    MessageTooLong(usize),
    /// `adder.wat` lacks a marker the behaviours are spliced at.
    #[error("adder.wat: marker `{0}` missing or misplaced")]
    Template(&'static str),
    /// The WAT did not parse.
    #[error("invalid WAT: {0}")]
    Wat(String),
    /// A WIT file did not parse or resolve.
    #[error("{file}: {message}")]
    Wit {
        /// The WIT file.
        file: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// wit-component refused the module (e.g. a signature that does not
    /// match the WIT).
    #[error("component encoding failed: {0}")]
    Encode(String),
    /// protox could not compile `adder.proto`.
    #[error("compiling {PROTO_FILE}: {0}")]
    Proto(#[from] Box<protox::Error>),
}

/// The real adder: `add-floats` returns `ok({ result: x + y })`.
pub fn component() -> Result<Vec<u8>, BuildError> {
    build(Behaviour::Add)
}

/// The adder component with behaviour `b`.
pub fn build(b: Behaviour) -> Result<Vec<u8>, BuildError> {
    component_from_wat(&module_wat(b)?)
}

/// The encoded `google.protobuf.FileDescriptorSet` of `adder.proto`
/// (compiled by protox with this crate's directory as the include path, so
/// the file is named `adder.proto`), with source info (comments) kept.
pub fn descriptor_set() -> Result<Vec<u8>, BuildError> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut compiler = protox::Compiler::new([dir]).map_err(Box::new)?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_file(PROTO_FILE)
        .map_err(Box::new)?;
    Ok(compiler.encode_file_descriptor_set())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consts_match_the_sources() {
        assert!(PROTO.contains("service AdderService"));
        assert!(WIT.contains("package foo:bar;"));
        assert!(GRPC_WIT.contains("package vimana:grpc@0.1.0;"));
        assert!(WAT.contains(&format!("\"{INTERFACE}#{FUNCTION}\"")));
    }

    #[test]
    fn every_behaviour_encodes() {
        for b in [
            Behaviour::Add,
            Behaviour::Loop,
            Behaviour::GrowMemory,
            Behaviour::Trap,
            Behaviour::Fail {
                code: 3,
                message: "x must be finite",
            },
            Behaviour::Offset(1000.0),
        ] {
            let wasm = build(b).unwrap_or_else(|e| panic!("{b:?}: {e}"));
            assert!(is_component(&wasm), "{b:?}");
        }
    }

    /// Components have layer 1 in the header (`\0asm`, version 0x0d, layer 1).
    fn is_component(bytes: &[u8]) -> bool {
        bytes.len() > 8 && &bytes[..4] == b"\0asm" && bytes[6..8] == [1, 0]
    }

    #[test]
    fn invalid_code_is_refused() {
        let e = build(Behaviour::Fail {
            code: 200,
            message: "",
        });
        assert!(matches!(e, Err(BuildError::InvalidCode(200))));
    }
}
