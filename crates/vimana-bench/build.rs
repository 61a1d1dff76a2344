//! Generates the `foo.bar` AdderService client/server code from
//! examples/adder/adder.proto with protox (no system `protoc`).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../examples/adder");
    let file = root.join("adder.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile(["adder.proto"], [root])?;
    tonic_prost_build::configure()
        .build_client(false)
        .compile_fds(fds)?;
    Ok(())
}
