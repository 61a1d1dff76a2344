use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let file = root.join("spacecore/v1/sc.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile(["spacecore/v1/sc.proto"], [root])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
