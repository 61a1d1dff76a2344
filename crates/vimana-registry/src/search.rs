//! Listing and ranked search of packages across repositories.

use serde::Serialize;

use crate::error::Result;
use crate::repos::{LoadedRepo, Registry};

/// Why a package matched, best first (the derive order is the ranking).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchKind {
    ExactName,
    NamePrefix,
    NameContains,
    Tag,
    Description,
    /// `list()`: no search term.
    Listed,
}

/// One package in a listing or search result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageHit {
    pub repo: String,
    pub name: String,
    pub version: String,
    pub node_types: Vec<String>,
    pub description: String,
    pub matched: MatchKind,
}

fn hit(repo: &LoadedRepo, p: &crate::index::Package, matched: MatchKind) -> PackageHit {
    PackageHit {
        repo: repo.name.clone(),
        name: p.name.clone(),
        version: p.version.clone(),
        node_types: p.node_types.keys().cloned().collect(),
        description: p.description.clone(),
        matched,
    }
}

/// Every package of `repos`, by name then repository.
pub fn list_in(repos: &[LoadedRepo]) -> Vec<PackageHit> {
    let mut out: Vec<PackageHit> = repos
        .iter()
        .flat_map(|r| {
            r.index
                .packages
                .iter()
                .map(move |p| hit(r, p, MatchKind::Listed))
        })
        .collect();
    out.sort_by(|a, b| (&a.name, &a.repo).cmp(&(&b.name, &b.repo)));
    out
}

/// Packages matching `term` (case-insensitive), ranked: exact name > name
/// prefix > name contains > tag > description; ties by name, then repo.
pub fn search_in(repos: &[LoadedRepo], term: &str) -> Vec<PackageHit> {
    let term = term.trim().to_lowercase();
    let mut out = Vec::new();
    for r in repos {
        for p in &r.index.packages {
            let name = p.name.to_lowercase();
            let matched = if term.is_empty() {
                Some(MatchKind::Listed)
            } else if name == term {
                Some(MatchKind::ExactName)
            } else if name.starts_with(&term) {
                Some(MatchKind::NamePrefix)
            } else if name.contains(&term) {
                Some(MatchKind::NameContains)
            } else if p.tags.iter().any(|t| t.to_lowercase().contains(&term)) {
                Some(MatchKind::Tag)
            } else if p.description.to_lowercase().contains(&term) {
                Some(MatchKind::Description)
            } else {
                None
            };
            if let Some(m) = matched {
                out.push(hit(r, p, m));
            }
        }
    }
    out.sort_by(|a, b| (a.matched, &a.name, &a.repo).cmp(&(b.matched, &b.name, &b.repo)));
    out
}

impl Registry {
    /// Every package of every repository.
    pub fn list_packages(&self) -> Result<Vec<PackageHit>> {
        Ok(list_in(&self.load_all()?))
    }

    /// Ranked search across every repository (see [`search_in`]).
    pub fn search(&self, term: &str) -> Result<Vec<PackageHit>> {
        Ok(search_in(&self.load_all()?, term))
    }
}
