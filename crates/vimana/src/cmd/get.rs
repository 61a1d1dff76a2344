//! `vimana get KIND [NAME]`: stored resources with their `Available`
//! condition, as a table, JSON or YAML (YAML lists are re-appliable
//! multi-document files).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use comfy_table::{Cell, Table, presets};
use http::Method;
use vimana_resources::{Resource, ResourceKind};

use crate::cli::OutputFormat;
use crate::client::Client;

/// Parses a kind as typed, with an error that lists the accepted ones.
pub(super) fn kind(kind: &str) -> Result<ResourceKind> {
    ResourceKind::from_alias(kind).ok_or_else(|| {
        anyhow!(
            "{kind:?} is not a resource kind; use vimanas, domains, servers or components (also singular, or vm, dom, srv, comp)"
        )
    })
}

/// Percent-encodes a path segment (names may hold `:` and `@`, which are
/// fine; anything unusual is escaped).
pub(super) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub async fn run(
    client: &Client,
    out: OutputFormat,
    kind_arg: &str,
    name: Option<&str>,
) -> Result<ExitCode> {
    let kind = kind(kind_arg)?;
    let base = format!("/v1/resources/{}", kind.plural());
    match name {
        Some(name) => {
            let path = format!("{base}/{}", segment(name));
            let one: serde_json::Value = client
                .call(Method::GET, &path, None::<&()>)
                .await?
                .ok_or_else(|| anyhow!("the daemon answered GET {path} without a body"))?;
            let one = ordered(one)?;
            match out {
                OutputFormat::Json => crate::output::json(&one)?,
                OutputFormat::Yaml => print!("{}", serde_yaml::to_string(&one)?),
                OutputFormat::Table => table(kind, std::slice::from_ref(&one))?,
            }
        }
        None => {
            let list: Vec<serde_json::Value> = client
                .call(Method::GET, &base, None::<&()>)
                .await?
                .unwrap_or_default();
            let list = list.into_iter().map(ordered).collect::<Result<Vec<_>>>()?;
            match out {
                OutputFormat::Json => crate::output::json(&list)?,
                OutputFormat::Yaml => {
                    let docs = list
                        .iter()
                        .map(serde_yaml::to_string)
                        .collect::<Result<Vec<_>, _>>()?;
                    print!("{}", docs.join("---\n"));
                }
                OutputFormat::Table if list.is_empty() => {
                    eprintln!(
                        "no {} applied; `vimana apply -f FILE` adds some",
                        kind.plural()
                    );
                }
                OutputFormat::Table => table(kind, &list)?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The resource as typed JSON, so fields come in their declared order.
fn ordered(value: serde_json::Value) -> Result<serde_json::Value> {
    let r = Resource::from_json(value)
        .map_err(|e| anyhow!("the daemon sent a resource this CLI cannot read: {e}"))?;
    Ok(serde_json::to_value(r)?)
}

fn table(kind: ResourceKind, list: &[serde_json::Value]) -> Result<()> {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    if !std::io::stdout().is_terminal() {
        t.force_no_tty();
    }
    let header: &[&str] = match kind {
        ResourceKind::Vimana => &["name", "regions", "superdomain"],
        ResourceKind::Domain => &["name", "id", "vimana", "aliases"],
        ResourceKind::Server => &["name", "id", "domain", "services", "versions"],
        ResourceKind::Component => &["name", "component", "image"],
    };
    let mut cols: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    cols.extend(["AVAILABLE".to_owned(), "REASON".to_owned()]);
    t.set_header(cols);
    for value in list {
        let r = Resource::from_json(value.clone())
            .map_err(|e| anyhow!("the daemon sent a resource this CLI cannot read: {e}"))?;
        let mut row: Vec<String> = match &r {
            Resource::Vimana(v) => vec![
                v.metadata.name.clone(),
                v.spec.regions.join(","),
                v.spec.canonical_superdomain.clone(),
            ],
            Resource::Domain(d) => vec![
                d.metadata.name.clone(),
                d.spec.id.clone(),
                d.spec.vimana.clone(),
                dash(d.spec.aliases.join(",")),
            ],
            Resource::Server(s) => vec![
                s.metadata.name.clone(),
                s.spec.id.clone(),
                s.spec.domain.clone(),
                dash(s.spec.services.join(",")),
                dash(
                    s.spec
                        .version_weights
                        .iter()
                        .map(|(v, w)| format!("{v}={w}"))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            ],
            Resource::Component(c) => vec![
                c.metadata.name.clone(),
                c.component_name(),
                c.spec.image.clone(),
            ],
        };
        let available = r
            .status()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Available"));
        row.push(available.map_or("Unknown".to_owned(), |c| c.status.clone()));
        row.push(dash(
            available.and_then(|c| c.reason.clone()).unwrap_or_default(),
        ));
        t.add_row(row.into_iter().map(Cell::new).collect::<Vec<_>>());
    }
    println!("{}", t.trim_fmt());
    Ok(())
}

fn dash(s: String) -> String {
    if s.is_empty() { "-".to_owned() } else { s }
}
