//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use vimana_grpc::{Contract, compile_protos};

/// The test proto directory.
pub fn protos() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/protos")
}

/// The adder example directory.
pub fn adder_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/adder")
}

/// Compiles test protos (relative to tests/protos) into descriptor bytes.
pub fn descriptor_set(files: &[&str]) -> Vec<u8> {
    let root = protos();
    let paths: Vec<PathBuf> = files.iter().map(|f| root.join(f)).collect();
    compile_protos(&paths, &[root]).expect("compile protos")
}

/// Compiles test protos into a contract.
pub fn contract(files: &[&str]) -> Contract {
    Contract::from_descriptor_set(&descriptor_set(files)).expect("contract")
}

/// The adder example's contract.
pub fn adder() -> Contract {
    let dir = adder_dir();
    let bytes = compile_protos(&[dir.join("adder.proto")], &[dir]).expect("compile adder");
    Contract::from_descriptor_set(&bytes).expect("adder contract")
}
