//! `vimana run <package> <node-type>` → the artifact for this host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{RegistryError, Result};
use crate::fsutil::join_inside;
use crate::index::{Artifact, NodeType, Package, normalize_arch, normalize_os};
use crate::repos::{LoadedRepo, Registry};
use crate::source;
use crate::template::render;

/// A package's node type resolved to one artifact for one platform.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub repo: String,
    pub package: Package,
    /// The node type's name as in the index (`light`, not `light-node`).
    pub node_type_name: String,
    pub node_type: NodeType,
    pub artifact: Artifact,
    /// The artifact's absolute URL (relative ones joined to the repo URL).
    pub url: String,
}

impl Resolved {
    /// Flag values: the declared defaults overridden by `overrides`.
    pub fn flag_values(&self, overrides: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = self
            .node_type
            .flags
            .iter()
            .filter_map(|(k, f)| f.default.clone().map(|d| (k.clone(), d)))
            .collect();
        vars.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }

    /// Where the package is installed, `<home>/packages/<name>/<version>`,
    /// and its executable inside; each part from the index is checked to
    /// stay inside its directory (the index rules already refuse such
    /// values, this holds for a `Resolved` from anywhere).
    pub fn install_paths(&self, home: &Path) -> Result<(PathBuf, PathBuf)> {
        let packages = home.join("packages");
        let by_name = join_inside(&packages, &self.package.name, "package name")?;
        let dir = join_inside(&by_name, &self.package.version, "version")?;
        if dir.parent() != Some(by_name.as_path()) {
            return Err(RegistryError::UnsafePath {
                what: "version",
                value: self.package.version.clone(),
                base: by_name,
            });
        }
        let bin = join_inside(&dir, &self.artifact.bin, "bin")?;
        Ok((dir, bin))
    }

    /// Render a command template array with `store`, `bin` and the flags.
    pub fn render_command(
        &self,
        template: &[String],
        store: &str,
        bin: &str,
        flags: &BTreeMap<String, String>,
    ) -> Result<Vec<String>> {
        let mut vars = self.flag_values(flags);
        vars.insert("store".into(), store.into());
        vars.insert("bin".into(), bin.into());
        template.iter().map(|t| render(t, &vars)).collect()
    }
}

/// The platform of this build of vimana, normalised (`linux`, `x86_64`).
pub fn host_platform() -> (String, String) {
    (
        normalize_os(std::env::consts::OS),
        normalize_arch(std::env::consts::ARCH),
    )
}

/// Resolve `spacecore` (`name` or `repo/name`) and `node_type` (`light` or
/// `light-node`) for `os`/`arch` among `repos`.
pub fn resolve_in(
    repos: &[LoadedRepo],
    spacecore: &str,
    node_type: &str,
    os: &str,
    arch: &str,
) -> Result<Resolved> {
    let (want_repo, name) = match spacecore.split_once('/') {
        Some((r, n)) => (Some(r), n),
        None => (None, spacecore),
    };
    let candidates: Vec<(&LoadedRepo, &Package)> = repos
        .iter()
        .filter(|r| want_repo.is_none_or(|w| w == r.name))
        .flat_map(|r| r.index.packages.iter().map(move |p| (r, p)))
        .filter(|(_, p)| p.name == name)
        .collect();
    let (repo, package) = match candidates.as_slice() {
        [] => {
            let all: Vec<String> = repos
                .iter()
                .flat_map(|r| r.index.packages.iter().map(|p| p.name.clone()))
                .filter(|p| p.contains(name) || name.contains(p.as_str()))
                .collect();
            let suggest = if all.is_empty() {
                String::new()
            } else {
                format!(" (did you mean: {}?)", all.join(", "))
            };
            return Err(RegistryError::PackageNotFound {
                name: spacecore.to_string(),
                suggest,
            });
        }
        [one] => *one,
        many => {
            return Err(RegistryError::AmbiguousPackage {
                name: spacecore.to_string(),
                candidates: many
                    .iter()
                    .map(|(r, p)| format!("{}/{}", r.name, p.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };

    let stripped = node_type.strip_suffix("-node").unwrap_or(node_type);
    let (type_name, nt) = package
        .node_types
        .get_key_value(node_type)
        .or_else(|| package.node_types.get_key_value(stripped))
        .ok_or_else(|| RegistryError::NodeTypeNotFound {
            package: package.name.clone(),
            node_type: node_type.to_string(),
            available: package
                .node_types
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    if !nt.kind.is_supported() {
        return Err(RegistryError::UnsupportedKind {
            package: package.name.clone(),
            node_type: type_name.clone(),
            kind: nt.kind.to_string(),
        });
    }
    let (os, arch) = (normalize_os(os), normalize_arch(arch));
    let artifact = nt
        .artifacts
        .iter()
        .find(|a| a.os == os && a.arch == arch)
        .ok_or_else(|| RegistryError::NoArtifact {
            package: package.name.clone(),
            node_type: type_name.clone(),
            os: os.clone(),
            arch: arch.clone(),
            available: if nt.artifacts.is_empty() {
                "none".into()
            } else {
                nt.artifacts
                    .iter()
                    .map(|a| format!("{}/{}", a.os, a.arch))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })?;
    let url = source::join(repo.url.as_deref(), &artifact.url)?;
    Ok(Resolved {
        repo: repo.name.clone(),
        package: package.clone(),
        node_type_name: type_name.clone(),
        node_type: nt.clone(),
        artifact: artifact.clone(),
        url,
    })
}

impl Registry {
    /// Resolve for this host across every repository (see [`resolve_in`]).
    pub fn resolve(&self, spacecore: &str, node_type: &str) -> Result<Resolved> {
        let (os, arch) = host_platform();
        resolve_in(&self.load_all()?, spacecore, node_type, &os, &arch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::default_repo::{BUILTIN_REPO, default_index};

    fn repos() -> Vec<LoadedRepo> {
        vec![LoadedRepo {
            name: BUILTIN_REPO.into(),
            url: None,
            index: default_index().unwrap(),
        }]
    }

    #[test]
    fn resolves_light_node_forms() {
        let r = resolve_in(&repos(), "celestia", "light-node", "linux", "x86_64").unwrap();
        assert_eq!(r.node_type_name, "light");
        assert!(r.url.ends_with("celestia-node_Linux_x86_64.tar.gz"));
        let r2 = resolve_in(&repos(), "vimana/celestia", "light", "linux", "arm64").unwrap();
        assert!(r2.url.ends_with("celestia-node_Linux_arm64.tar.gz"));
        let cmd = r
            .render_command(&r.node_type.start, "/s", "/b/celestia", &BTreeMap::new())
            .unwrap();
        assert_eq!(cmd[0], "/b/celestia");
        assert!(cmd.contains(&"rpc.celestia.pops.one".to_string()));
        let over = BTreeMap::from([("network".to_string(), "mocha".to_string())]);
        let cmd = r
            .render_command(&r.node_type.start, "/s", "/b", &over)
            .unwrap();
        assert!(cmd.contains(&"mocha".to_string()));
    }

    #[test]
    fn install_paths_stay_inside_packages() {
        let mut r = resolve_in(&repos(), "celestia", "light", "linux", "x86_64").unwrap();
        let home = Path::new("/home/v");
        let (dir, bin) = r.install_paths(home).unwrap();
        assert_eq!(dir, home.join("packages/celestia").join(&r.package.version));
        assert!(bin.starts_with(&dir));
        for (version, bin) in [
            ("../../../tmp/x", "celestia"),
            ("1.0/x", "celestia"),
            ("/tmp/x", "celestia"),
            ("1.0", "../../x"),
            ("1.0", "/usr/bin/x"),
        ] {
            r.package.version = version.into();
            r.artifact.bin = bin.into();
            let e = r.install_paths(home).unwrap_err();
            assert!(
                matches!(e, RegistryError::UnsafePath { .. }),
                "{version} {bin}: {e}"
            );
        }
    }

    #[test]
    fn errors_list_what_exists() {
        let e = resolve_in(&repos(), "celestia", "archive", "linux", "x86_64").unwrap_err();
        assert!(e.to_string().contains("bridge, full, light"), "{e}");
        let e = resolve_in(&repos(), "celestia", "light", "macos", "aarch64").unwrap_err();
        assert!(e.to_string().contains("linux/x86_64, linux/aarch64"), "{e}");
        let e = resolve_in(&repos(), "celest", "light", "linux", "x86_64").unwrap_err();
        assert!(e.to_string().contains("celestia"), "{e}");
    }
}
