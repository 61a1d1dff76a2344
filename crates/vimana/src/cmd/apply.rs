//! `vimana apply -f FILE…`: parse and check the resources here (errors
//! point into the file), then send them to the daemon, which checks them
//! against the stored ones and stores all or nothing.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use http::Method;
use miette::{Diagnostic, LabeledSpan, NamedSource};
use vimana_api::{ApplyRequest, ChangeList, SourceRef};
use vimana_resources::{Resource, ResourceError, parse_documents};

use crate::cli::OutputFormat;
use crate::client::Client;

/// The resources of every file, in order, each with its file and document.
pub(super) fn read_resources(files: &[String]) -> Result<Vec<(Resource, SourceRef)>> {
    let mut out = Vec::new();
    let mut stdin_read = false;
    for file in files {
        let text = if file == "-" {
            if stdin_read {
                return Err(anyhow!("-f - is given twice; stdin can be read only once"));
            }
            stdin_read = true;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read resources from stdin")?;
            text
        } else {
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read resource file {file}"))?
        };
        let resources = parse_documents(file, &text).map_err(|e| located(file, &text, e))?;
        let base = image_base(file)?;
        for mut r in resources {
            absolute_image(&mut r, &base);
            let origin = r.origin().map(|o| SourceRef {
                file: o.file.clone(),
                document: o.document,
            });
            let origin = origin.unwrap_or_else(|| SourceRef {
                file: file.clone(),
                document: 0,
            });
            out.push((r, origin));
        }
    }
    if out.is_empty() {
        return Err(anyhow!(
            "{} holds no resources; write documents with apiVersion, kind, metadata and spec",
            files.join(", ")
        ));
    }
    Ok(out)
}

/// The directory relative `image:` paths of `file` are resolved against:
/// the file's own directory (as Compose and kustomize do), or the current
/// directory for stdin (`-`).
fn image_base(file: &str) -> Result<PathBuf> {
    if file == "-" {
        return std::env::current_dir().context("cannot resolve the current directory");
    }
    let dir = Path::new(file)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).with_context(|| format!("cannot resolve the directory of {file}"))
}

/// A Component's relative local image path is made absolute here (against
/// `base`, see [`image_base`]), because the daemon runs elsewhere. `.` and
/// `..` are resolved lexically.
fn absolute_image(r: &mut Resource, base: &Path) {
    if let Resource::Component(c) = r
        && let vimana_resources::ImageSource::Path(p) = c.spec.image_source()
        && p.is_relative()
    {
        let mut joined = base.to_path_buf();
        for part in Path::new(&p).components() {
            match part {
                Component::ParentDir => {
                    joined.pop();
                }
                Component::Normal(n) => joined.push(n),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        c.spec.image = joined.display().to_string();
    }
}

/// A [`ResourceError`] with the file's text, so miette can show the line.
#[derive(Debug, thiserror::Error)]
#[error("{inner}")]
struct Located {
    inner: ResourceError,
    src: NamedSource<String>,
    at: Option<(usize, usize)>,
}

impl Diagnostic for Located {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.inner.code()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.inner.help()
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.at.map(|_| &self.src as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (offset, len) = self.at?;
        let label = self.inner.field().unwrap_or("here").to_owned();
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some(label),
            offset,
            len,
        ))))
    }
}

fn located(file: &str, text: &str, inner: ResourceError) -> anyhow::Error {
    let at = position(text, &inner);
    let diag = Located {
        inner,
        src: NamedSource::new(file, text.to_owned()),
        at,
    };
    anyhow!("{:?}", miette::Report::new(diag))
}

/// Byte offset and length of what the error is about.
fn position(text: &str, e: &ResourceError) -> Option<(usize, usize)> {
    let line_col = match e {
        ResourceError::Syntax { line, column, .. } => Some((*line, *column)),
        ResourceError::Schema { position, .. } => *position,
        ResourceError::Invalid { .. } => None,
    };
    if let Some((line, column)) = line_col {
        let start: usize = text
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum();
        return Some((start + column.saturating_sub(1), 1));
    }
    // A rule broken by a field: find its key inside its document.
    let ResourceError::Invalid { context, field, .. } = e else {
        return None;
    };
    let document = context.origin.as_ref()?.document;
    let key = field.split('.').next_back()?.split('[').next()?;
    let mut offset = 0;
    let mut doc = 1;
    for line in text.split_inclusive('\n') {
        if line.starts_with("---") {
            doc += 1;
        } else if doc == document {
            let trimmed = line.trim_start().trim_start_matches("- ");
            if trimmed.starts_with(&format!("{key}:")) {
                let indent = line.len() - trimmed.len();
                return Some((offset + indent, key.len()));
            }
        }
        offset += line.len();
    }
    None
}

/// Prints what the daemon did: `domain/example created`, or the list as
/// JSON or YAML.
pub(super) fn print_changes(out: OutputFormat, list: &ChangeList) -> Result<()> {
    match out {
        OutputFormat::Json => crate::output::json(list),
        OutputFormat::Yaml => {
            print!("{}", serde_yaml::to_string(list)?);
            Ok(())
        }
        OutputFormat::Table => {
            for c in &list.changes {
                println!("{c}");
            }
            Ok(())
        }
    }
}

pub async fn run(client: &Client, out: OutputFormat, files: &[String]) -> Result<ExitCode> {
    let parsed = read_resources(files)?;
    let mut body = ApplyRequest::default();
    for (resource, origin) in &parsed {
        body.resources.push(
            serde_json::to_value(resource)
                .with_context(|| format!("cannot encode {}", resource.reference()))?,
        );
        body.origins.push(origin.clone());
    }
    let list: ChangeList = client
        .call(Method::POST, "/v1/resources", Some(&body))
        .await?
        .ok_or_else(|| anyhow!("the daemon answered the apply without a body"))?;
    print_changes(out, &list)?;
    Ok(ExitCode::SUCCESS)
}
