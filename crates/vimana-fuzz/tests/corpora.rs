//! Replays every committed corpus file (`fuzz/corpus/<target>/`) through
//! its target, so a parser regression fails the ordinary test run without a
//! fuzzing build. Inputs that once crashed a target are named here too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_corpus_and_replays_it() {
    for (name, target) in vimana_fuzz::TARGETS {
        let files = inputs(name);
        assert!(!files.is_empty(), "corpus of {name} is empty");
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} panics on {}", file.display());
        }
    }
}

#[test]
fn every_corpus_belongs_to_a_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for entry in std::fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            vimana_fuzz::TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name} has no target in vimana_fuzz::TARGETS"
        );
    }
}

/// Replays one named corpus file (a former crash) through its target.
fn replay(target: &str, file: &str) {
    let (_, run) = vimana_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap();
    run(&std::fs::read(corpus_dir(target).join(file)).unwrap());
}

/// A descriptor set whose file declares a syntax other than proto2/proto3
/// panicked in prost-reflect 0.16 (`DescriptorPool::decode` labels the error
/// with a file it has not stored yet); vimana-grpc now refuses it first.
#[test]
fn codec_descriptor_with_unknown_syntax() {
    replay("codec", "crash_descriptor_unknown_syntax");
    let data = std::fs::read(corpus_dir("codec").join("crash_descriptor_unknown_syntax")).unwrap();
    let len = usize::from(u16::from_be_bytes([data[1], data[2]])).min(data.len() - 3);
    let err = vimana_grpc::Contract::from_descriptor_set(&data[3..3 + len]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("has syntax") && text.contains("only proto2 and proto3"),
        "{text}"
    );
}

/// A message marked `map_entry` without a value field panicked in
/// prost-reflect (`map_entry_value_field` expects one) when vimana-grpc laid
/// out the map; such descriptor sets are now refused when the contract is
/// built.
#[test]
fn codec_map_entry_without_value_field() {
    replay("codec", "crash_map_entry_without_value");
}
