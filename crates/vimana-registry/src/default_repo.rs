//! The built-in `vimana` repository, embedded in the binary.

use crate::index::{self, Index, IndexError};

/// The name of the built-in repository (always present, cannot be removed).
pub const BUILTIN_REPO: &str = "vimana";

const TEXT: &str = include_str!("default-index.toml");

/// The embedded index text.
pub fn default_index_text() -> &'static str {
    TEXT
}

/// The embedded index, parsed and validated.
pub fn default_index() -> Result<Index, Box<IndexError>> {
    index::parse("<built-in>/default-index.toml", TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_index_validates() {
        let idx = match default_index() {
            Ok(i) => i,
            Err(e) => panic!("{:?}", miette::Report::new(*e)),
        };
        assert_eq!(idx.repository.name, BUILTIN_REPO);
        let celestia = idx.packages.iter().find(|p| p.name == "celestia").unwrap();
        assert_eq!(
            celestia.node_types.keys().collect::<Vec<_>>(),
            ["bridge", "full", "light"]
        );
        let light = &celestia.node_types["light"];
        assert_eq!(light.flags["network"].default.as_deref(), Some("celestia"));
        assert!(light.init.is_some());
        assert!(!celestia.is_verified());
        assert!(celestia.notes.is_some());
        assert!(
            light
                .artifacts
                .iter()
                .any(|a| a.os == "linux" && a.arch == "aarch64")
        );
        let avail = idx.packages.iter().find(|p| p.name == "avail").unwrap();
        assert_eq!(
            avail.node_types["light"].flags["network"]
                .default
                .as_deref(),
            Some("mainnet")
        );
    }
}
