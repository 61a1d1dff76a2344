//! Raw index → checked model, one rule at a time, each failure pointing at
//! the exact place in the source.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use toml::Spanned;

use super::raw::{RawArtifact, RawIndex, RawNodeType, RawPackage, SchemaProbe};
use super::{
    ArchiveFormat, Artifact, Flag, Index, IndexError, NodeKind, NodeType, Package, Repository,
    Resources, Restart, SCHEMA, normalize_arch, normalize_os,
};
use crate::template::{BUILTINS, is_placeholder_name, placeholders};

struct Ctx<'a> {
    name: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        rule: &'static str,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> Box<IndexError> {
        Box::new(IndexError::new(
            self.name,
            self.text,
            rule,
            Some(span),
            message,
            label,
            help,
        ))
    }
}

/// `^[a-z][a-z0-9-]*$`
pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn syntax(cx: &Ctx<'_>, e: &toml::de::Error) -> Box<IndexError> {
    let message = e.message().trim().to_string();
    let (rule, help) = if message.starts_with("unknown field") {
        (
            "index::unknown_key",
            "remove the key or fix its spelling; docs/registry.md lists every key",
        )
    } else if message.starts_with("missing field") {
        (
            "index::missing_key",
            "add the key; docs/registry.md lists the required keys",
        )
    } else {
        ("index::syntax", "fix the TOML syntax at the marked place")
    };
    Box::new(IndexError::new(
        cx.name,
        cx.text,
        rule,
        e.span(),
        message.clone(),
        message,
        help,
    ))
}

pub(super) fn parse(name: &str, text: &str) -> Result<Index, Box<IndexError>> {
    let cx = Ctx { name, text };
    let probe: SchemaProbe = toml::from_str(text).map_err(|e| syntax(&cx, &e))?;
    let Some(schema) = probe.schema else {
        return Err(Box::new(IndexError::new(
            name,
            text,
            "index::schema",
            Some(0..0),
            "the index has no `schema` key",
            "expected `schema = 1` here",
            "add `schema = 1` as the first line",
        )));
    };
    let span = schema.span();
    match schema.get_ref().as_integer() {
        Some(SCHEMA) => {}
        Some(n) if n > SCHEMA => {
            return Err(cx.err(
                "index::schema_newer",
                span,
                format!("the index uses schema {n}, this vimana reads schema {SCHEMA}"),
                format!("schema {n} is newer than {SCHEMA}"),
                "upgrade vimana to read this repository",
            ));
        }
        _ => {
            return Err(cx.err(
                "index::schema",
                span,
                format!("unsupported schema {}", schema.get_ref()),
                "expected 1",
                "set `schema = 1`",
            ));
        }
    }
    let raw: RawIndex = toml::from_str(text).map_err(|e| syntax(&cx, &e))?;

    check_name(&cx, &raw.repository.name, "repository name")?;
    let repository = Repository {
        name: raw.repository.name.into_inner(),
        description: raw.repository.description,
    };
    let mut seen = BTreeSet::new();
    let mut packages = Vec::with_capacity(raw.package.len());
    for p in raw.package {
        if !seen.insert(p.name.get_ref().clone()) {
            return Err(cx.err(
                "index::duplicate_package",
                p.name.span(),
                format!("package {:?} is defined twice", p.name.get_ref()),
                "second definition",
                "merge the two [[package]] tables or rename one",
            ));
        }
        packages.push(package(&cx, p)?);
    }
    Ok(Index {
        schema: SCHEMA,
        repository,
        packages,
    })
}

fn check_name(cx: &Ctx<'_>, name: &Spanned<String>, what: &str) -> Result<(), Box<IndexError>> {
    if is_name(name.get_ref()) {
        return Ok(());
    }
    Err(cx.err(
        "index::name",
        name.span(),
        format!("invalid {what} {:?}", name.get_ref()),
        "must match ^[a-z][a-z0-9-]*$",
        "use a lowercase letter first, then lowercase letters, digits and '-'",
    ))
}

/// Whether `v` is a safe version string: it becomes one directory name
/// (`packages/<name>/<version>`), so an ASCII letter or digit first, then
/// letters, digits, `.`, `_`, `+` and `-`, no `..`, at most 64 characters.
/// Every semver version (and `v1.2.3`, dates) passes.
pub(crate) fn is_version(v: &str) -> bool {
    v.len() <= 64
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
        && !v.contains("..")
}

fn check_version(cx: &Ctx<'_>, v: &Spanned<String>) -> Result<(), Box<IndexError>> {
    if is_version(v.get_ref()) {
        return Ok(());
    }
    Err(cx.err(
        "index::version",
        v.span(),
        format!(
            "invalid version {:?}: it names the package's install directory",
            v.get_ref()
        ),
        "must match ^[A-Za-z0-9][A-Za-z0-9._+-]*$ without \"..\", at most 64 characters",
        "use a version like 1.2.3 (semver: 1.2.3-rc.1+build.5); no '/', '..' or spaces",
    ))
}

fn package(cx: &Ctx<'_>, p: RawPackage) -> Result<Package, Box<IndexError>> {
    check_name(cx, &p.name, "package name")?;
    check_version(cx, &p.version)?;
    for tag in &p.tags {
        check_name(cx, tag, "tag")?;
    }
    if let Some(home) = &p.homepage {
        check_url(cx, home, false)?;
    }
    let types_span = p.node_types.span();
    let raw_types = p.node_types.into_inner();
    if raw_types.is_empty() {
        return Err(cx.err(
            "index::no_node_types",
            types_span,
            format!("package {:?} has no node types", p.name.get_ref()),
            "empty",
            "add a [package.node_types.<type>] table",
        ));
    }
    let mut node_types = BTreeMap::new();
    for (type_name, raw) in raw_types {
        check_name(cx, &type_name, "node type name")?;
        node_types.insert(type_name.into_inner(), node_type(cx, raw)?);
    }
    Ok(Package {
        name: p.name.into_inner(),
        description: p.description,
        tags: p.tags.into_iter().map(Spanned::into_inner).collect(),
        version: p.version.into_inner(),
        homepage: p.homepage.map(Spanned::into_inner),
        notes: p.notes,
        node_types,
    })
}

fn node_type(cx: &Ctx<'_>, raw: RawNodeType) -> Result<NodeType, Box<IndexError>> {
    let kind = NodeKind::parse(raw.kind.get_ref()).ok_or_else(|| {
        cx.err(
            "index::kind",
            raw.kind.span(),
            format!("unknown node kind {:?}", raw.kind.get_ref()),
            "not a known kind",
            "use one of: process, plugin, wasm, vm",
        )
    })?;

    let mut flags = BTreeMap::new();
    for (name, f) in raw.flags {
        if !is_placeholder_name(name.get_ref())
            || matches!(name.get_ref().as_str(), "store" | "bin")
        {
            return Err(cx.err(
                "index::flag_name",
                name.span(),
                format!("invalid flag name {:?}", name.get_ref()),
                "must match ^[a-z][a-z0-9_]*$ and not be `store` or `bin`",
                "rename the flag (it is also the placeholder name)",
            ));
        }
        flags.insert(
            name.into_inner(),
            Flag {
                default: f.default,
                description: f.description,
            },
        );
    }

    let start_span = raw.start.span();
    let start: Vec<Spanned<String>> = raw.start.into_inner();
    if start.first().is_none_or(|s| s.get_ref().trim().is_empty()) {
        return Err(cx.err(
            "index::start",
            start_span,
            "`start` must name a program",
            "empty command",
            "give the command as an array, e.g. start = [\"{{bin}}\", \"start\"]",
        ));
    }
    check_command(cx, &start, &flags)?;
    let init = match raw.init {
        None => None,
        Some(init) => {
            let span = init.span();
            let init = init.into_inner();
            if init.first().is_none_or(|s| s.get_ref().trim().is_empty()) {
                return Err(cx.err(
                    "index::init",
                    span,
                    "`init` must name a program",
                    "empty command",
                    "remove `init` or give a command array",
                ));
            }
            check_command(cx, &init, &flags)?;
            Some(init.into_iter().map(Spanned::into_inner).collect())
        }
    };

    let mut ports = Vec::with_capacity(raw.ports.len());
    for p in raw.ports {
        match u16::try_from(*p.get_ref()) {
            Ok(port) if port > 0 => ports.push(port),
            _ => {
                return Err(cx.err(
                    "index::port",
                    p.span(),
                    format!("port {} is out of range", p.get_ref()),
                    "not in 1..=65535",
                    "use a TCP/UDP port number between 1 and 65535",
                ));
            }
        }
    }

    let resources = match raw.resources {
        None => None,
        Some(r) => {
            if let Some(cpu) = &r.cpu
                && !(cpu.get_ref().is_finite() && *cpu.get_ref() > 0.0)
            {
                return Err(cx.err(
                    "index::cpu",
                    cpu.span(),
                    "cpu must be a positive number of cores",
                    "not positive",
                    "e.g. cpu = 1.0",
                ));
            }
            let memory_bytes = match &r.memory {
                None => None,
                Some(m) => Some(parse_size(m.get_ref()).ok_or_else(|| {
                    cx.err(
                        "index::memory",
                        m.span(),
                        format!("cannot read memory size {:?}", m.get_ref()),
                        "not a size",
                        "write a number with a unit: 512MiB, 2GiB, 1GB",
                    )
                })?),
            };
            Some(Resources {
                cpu: r.cpu.map(Spanned::into_inner),
                memory_bytes,
            })
        }
    };

    let mut env = BTreeMap::new();
    for (key, value) in raw.env {
        check_command(cx, std::slice::from_ref(&value), &flags)?;
        env.insert(key, value.into_inner());
    }
    let restart = match raw.restart {
        None => Restart::Always,
        Some(r) => match r.get_ref().as_str() {
            "always" => Restart::Always,
            "on-failure" => Restart::OnFailure,
            "never" => Restart::Never,
            other => {
                return Err(cx.err(
                    "index::restart",
                    r.span(),
                    format!("unknown restart policy {other:?}"),
                    "not a restart policy",
                    "use always, on-failure or never",
                ));
            }
        },
    };

    let mut platforms = BTreeSet::new();
    let mut artifacts = Vec::with_capacity(raw.artifacts.len());
    for a in raw.artifacts {
        let os_span = a.os.span();
        let art = artifact(cx, a)?;
        if !platforms.insert((art.os.clone(), art.arch.clone())) {
            return Err(cx.err(
                "index::duplicate_artifact",
                os_span,
                format!("two artifacts for {}/{}", art.os, art.arch),
                "second artifact for this platform",
                "keep one artifact per os/arch",
            ));
        }
        artifacts.push(art);
    }

    Ok(NodeType {
        description: raw.description,
        kind,
        init,
        start: start.into_iter().map(Spanned::into_inner).collect(),
        flags,
        ports,
        resources,
        env,
        restart,
        artifacts,
    })
}

fn check_command(
    cx: &Ctx<'_>,
    cmd: &[Spanned<String>],
    flags: &BTreeMap<String, Flag>,
) -> Result<(), Box<IndexError>> {
    for arg in cmd {
        let span = arg.span();
        // The span covers the quotes of a basic string; offsets inside the
        // value are shifted by one when the text has no escapes.
        let inner = span.start + 1;
        let raw_is_literal = cx
            .text
            .get(inner..span.end.saturating_sub(1))
            .is_some_and(|t| t == arg.get_ref());
        let sub = |r: Range<usize>| {
            if raw_is_literal {
                inner + r.start..inner + r.end
            } else {
                span.clone()
            }
        };
        let found = placeholders(arg.get_ref()).map_err(|e| {
            cx.err(
                "index::template",
                sub(e.range.clone()),
                e.message.clone(),
                "bad placeholder",
                "write placeholders as {{name}}",
            )
        })?;
        for p in found {
            if !BUILTINS.contains(&p.name.as_str()) && !flags.contains_key(&p.name) {
                let mut known: Vec<&str> = BUILTINS.to_vec();
                known.extend(
                    flags
                        .keys()
                        .map(String::as_str)
                        .filter(|f| !BUILTINS.contains(f)),
                );
                return Err(cx.err(
                    "index::unknown_placeholder",
                    sub(p.range),
                    format!("unknown placeholder {{{{{}}}}}", p.name),
                    "neither a builtin nor a declared flag",
                    format!(
                        "use one of {} or declare [..flags.{}]",
                        known.join(", "),
                        p.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_url(
    cx: &Ctx<'_>,
    u: &Spanned<String>,
    allow_relative: bool,
) -> Result<(), Box<IndexError>> {
    let s = u.get_ref();
    let bad = |why: String| {
        cx.err(
            "index::url",
            u.span(),
            format!("invalid URL {s:?}: {why}"),
            "bad URL",
            if allow_relative {
                "use an https://, http:// or file:// URL, or a path relative to the index"
            } else {
                "use an https:// or http:// URL"
            },
        )
    };
    if s.trim().is_empty() {
        return Err(bad("empty".into()));
    }
    match url::Url::parse(s) {
        Ok(parsed) => match parsed.scheme() {
            "http" | "https" => Ok(()),
            "file" if allow_relative => Ok(()),
            other => Err(bad(format!("scheme {other:?} is not supported"))),
        },
        Err(url::ParseError::RelativeUrlWithoutBase) if allow_relative => Ok(()),
        Err(e) => Err(bad(e.to_string())),
    }
}

fn artifact(cx: &Ctx<'_>, a: RawArtifact) -> Result<Artifact, Box<IndexError>> {
    check_url(cx, &a.url, true)?;
    for (v, what) in [(&a.os, "os"), (&a.arch, "arch")] {
        let ok = !v.get_ref().is_empty()
            && v.get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(cx.err(
                "index::platform",
                v.span(),
                format!("invalid {what} {:?}", v.get_ref()),
                "not a platform name",
                "use e.g. os = \"linux\", arch = \"x86_64\" or \"aarch64\"",
            ));
        }
    }
    let sha256 = match &a.sha256 {
        None => None,
        Some(h) => {
            let s = h.get_ref();
            if s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(cx.err(
                    "index::sha256",
                    h.span(),
                    format!("sha256 must be 64 hex digits, got {} characters", s.len()),
                    "not a sha256 digest",
                    "paste the output of `sha256sum <file>`, or omit the key (and say so in `notes`)",
                ));
            }
            Some(s.to_ascii_lowercase())
        }
    };
    let format = ArchiveFormat::parse(a.format.get_ref()).ok_or_else(|| {
        cx.err(
            "index::format",
            a.format.span(),
            format!("unknown format {:?}", a.format.get_ref()),
            "not a known format",
            "use one of: raw, tar.gz, zip",
        )
    })?;
    let bin = a.bin.get_ref();
    let bad_bin = bin.is_empty()
        || bin.starts_with('/')
        || bin.split('/').any(|c| c == ".." || c.is_empty())
        || (format == ArchiveFormat::Raw && bin.contains('/'));
    if bad_bin {
        return Err(cx.err(
            "index::bin",
            a.bin.span(),
            format!("invalid bin {bin:?}"),
            "not a safe relative path",
            "give the executable's path inside the archive (no leading '/', no '..'); for raw, a plain file name",
        ));
    }
    Ok(Artifact {
        os: normalize_os(a.os.get_ref()),
        arch: normalize_arch(a.arch.get_ref()),
        url: a.url.into_inner(),
        sha256,
        format,
        bin: a.bin.into_inner(),
    })
}

/// `2GiB`, `512MiB`, `1GB`, `1024` (bytes).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1000,
        "KiB" => 1 << 10,
        "M" | "MB" => 1000 * 1000,
        "MiB" => 1 << 20,
        "G" | "GB" => 1000 * 1000 * 1000,
        "GiB" => 1 << 30,
        "T" | "TB" => 1000 * 1000 * 1000 * 1000,
        "TiB" => 1 << 40,
        _ => return None,
    };
    let bytes = num * mult as f64;
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("512 MiB"), Some(512 << 20));
        assert_eq!(parse_size("1GB"), Some(1_000_000_000));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn names() {
        assert!(is_name("celestia"));
        assert!(is_name("avail-light2"));
        assert!(!is_name("Celestia"));
        assert!(!is_name("-x"));
        assert!(!is_name(""));
    }
}
