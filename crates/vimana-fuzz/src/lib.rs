//! The bodies of vimana's fuzz targets: one function per parser that reads
//! untrusted input, each taking the raw bytes libFuzzer produces.
//!
//! A target must never panic; where a parser accepts an input, the target
//! also checks what must hold of the result (it encodes back, it stays
//! within its limit). `fuzz/` (cargo-fuzz, its own workspace) calls these
//! through libfuzzer-sys; `tests/corpora.rs` replays the committed corpora
//! `fuzz/corpus/<target>/` through them as ordinary tests. See
//! `docs/fuzzing.md`.

mod agent;
mod codec;
mod documents;
mod goplugin;
mod grpc_frame;
mod oci;

pub use agent::agent_frames;
pub use codec::{codec, fixed_descriptor_sets};
pub use documents::{hac, package_index, resources};
pub use goplugin::goplugin_line;
pub use grpc_frame::grpc_frame;
pub use oci::oci_manifest;

/// A target: the raw input of one run.
pub type Target = fn(&[u8]);

/// Every target by its name (the name of its `fuzz/fuzz_targets/` file and
/// of its corpus directory).
pub const TARGETS: &[(&str, Target)] = &[
    ("hac", hac),
    ("resources", resources),
    ("package_index", package_index),
    ("goplugin_line", goplugin_line),
    ("agent_frames", agent_frames),
    ("codec", codec),
    ("oci_manifest", oci_manifest),
    ("grpc_frame", grpc_frame),
];
