//! The service contract carried inside a component file.
//!
//! A local `.wasm` image carries its protobuf FileDescriptorSet in a
//! top-level custom section named [`SECTION`] (an OCI image carries it as a
//! layer instead; see docs/images.md). Custom sections are ignored by
//! wasmtime, so the component runs unchanged.

use wasm_encoder::{CustomSection, Encode};
use wasmparser::{Parser, Payload};

/// Name of the custom section holding an encoded FileDescriptorSet.
pub const SECTION: &str = "vimana:grpc/descriptor-set";

/// The component is not a valid Wasm binary.
#[derive(Debug, thiserror::Error)]
#[error("not a valid WebAssembly component: {0}")]
pub struct SectionError(String);

/// `component` with `descriptor_set` appended as the [`SECTION`] custom
/// section, replacing an earlier one.
pub fn embed(component: &[u8], descriptor_set: &[u8]) -> Result<Vec<u8>, SectionError> {
    let ranges = top_level_sections(component)?;
    let mut out = Vec::with_capacity(component.len() + descriptor_set.len() + 64);
    let mut pos = 0;
    for r in ranges.iter().filter(|r| r.ours) {
        out.extend_from_slice(&component[pos..r.start]);
        pos = r.end;
    }
    out.extend_from_slice(&component[pos..]);
    let section = CustomSection {
        name: SECTION.into(),
        data: descriptor_set.into(),
    };
    out.push(0); // custom section id
    section.encode(&mut out);
    Ok(out)
}

/// The FileDescriptorSet embedded in `component`, if any (the last one).
pub fn extract(component: &[u8]) -> Result<Option<Vec<u8>>, SectionError> {
    Ok(top_level_sections(component)?
        .into_iter()
        .rev()
        .find(|r| r.ours)
        .map(|r| r.data))
}

struct Range {
    start: usize,
    end: usize,
    ours: bool,
    data: Vec<u8>,
}

/// Top-level custom sections (nested modules and components are skipped).
fn top_level_sections(bytes: &[u8]) -> Result<Vec<Range>, SectionError> {
    let mut depth = 0usize;
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| SectionError(e.to_string()))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(reader) if depth == 0 && reader.name() == SECTION => {
                // The reader's range covers the section contents (name +
                // data); the section header (id byte + LEB size) precedes it.
                let range = reader.range();
                let start = header_start(bytes, range.start);
                out.push(Range {
                    start,
                    end: range.end,
                    ours: true,
                    data: reader.data().to_vec(),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Walks back from the start of a section's contents over its LEB128 size
/// and the id byte.
fn header_start(bytes: &[u8], contents: usize) -> usize {
    let mut i = contents;
    // The size is at most 5 LEB bytes; the last one has the high bit clear.
    if i > 0 {
        i -= 1; // last byte of the size
        while i > 0 && bytes[i - 1] & 0x80 != 0 {
            i -= 1;
        }
        i = i.saturating_sub(1); // the id byte
    }
    i
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn empty_component() -> Vec<u8> {
        // `(component)` in binary form.
        vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]
    }

    #[test]
    fn embed_then_extract_round_trips() {
        let c = embed(&empty_component(), b"fds-bytes").unwrap();
        assert_eq!(extract(&c).unwrap().as_deref(), Some(&b"fds-bytes"[..]));
        assert_eq!(extract(&empty_component()).unwrap(), None);
    }

    #[test]
    fn embedding_again_replaces_the_section() {
        let big = vec![7u8; 300]; // a two-byte LEB size
        let once = embed(&empty_component(), &big).unwrap();
        let twice = embed(&once, b"new").unwrap();
        assert_eq!(extract(&twice).unwrap().as_deref(), Some(&b"new"[..]));
        assert_eq!(
            twice.len(),
            embed(&empty_component(), b"new").unwrap().len()
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(extract(b"not wasm").is_err());
    }
}
