//! OCI artifacts of Wasm components (see docs/images.md).
