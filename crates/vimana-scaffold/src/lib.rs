//! `vimana scaffold`: writes a complete spacecore project, in Rust (on the
//! `vimana-spacecore` SDK) or in Go (on HashiCorp go-plugin, built in GOPATH
//! mode from Debian's packaged sources).
//!
//! The templates are embedded in the library (`templates/`) and rendered
//! with minijinja in strict mode, so a misspelt variable is an error, never
//! an empty string. `proto/sc.proto` of a generated project is the
//! repository's `proto/spacecore/v1/sc.proto`, embedded verbatim.
//!
//! Writing is careful: every file goes to a temporary sibling first and is
//! renamed into place; when a write fails midway, the files and directories
//! this run created are removed and the files it overwrote (`force`) are
//! restored, so no project is left half-written. See `docs/scaffold.md`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// The spacecore protocol, copied into every generated project.
pub const SC_PROTO: &str = include_str!("../../../proto/spacecore/v1/sc.proto");

/// The rule [`validate_name`] enforces, as shown in its errors.
pub const NAME_RULE: &str =
    "^[a-z][a-z0-9-]{0,62}$ (a lowercase letter, then at most 62 lowercase letters, digits or '-')";

/// The language of the generated spacecore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Rust, on the `vimana-spacecore` SDK.
    #[default]
    Rust,
    /// Go, on hashicorp/go-plugin (GOPATH mode, Debian packages).
    Go,
}

impl Lang {
    /// `"rust"` or `"go"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Go => "go",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lang {
    type Err = ScaffoldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Lang::Rust),
            "go" | "golang" => Ok(Lang::Go),
            _ => Err(ScaffoldError::UnknownLang(s.to_string())),
        }
    }
}

/// Where a generated Rust spacecore takes the `vimana-spacecore` SDK from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdkSource {
    /// `vimana-spacecore = "<version>"` from crates.io.
    CratesIo {
        /// The version requirement, e.g. `"0.1.0"`.
        version: String,
    },
    /// `vimana-spacecore = { path = "<path>" }`: a checkout's
    /// `crates/vimana-spacecore` (tests, SDK development). A relative path
    /// is made absolute against the current directory.
    Path(PathBuf),
}

impl Default for SdkSource {
    /// crates.io, this workspace's version.
    fn default() -> Self {
        SdkSource::CratesIo {
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// What to generate, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaffoldOptions {
    /// The spacecore's name (see [`validate_name`]).
    pub name: String,
    /// The language of the project.
    pub lang: Lang,
    /// The target directory, e.g. `./<name>`.
    pub dir: PathBuf,
    /// Write into a non-empty directory, overwriting the template's files
    /// (and only those).
    pub force: bool,
    /// Where the Rust SDK comes from (ignored for Go).
    pub sdk: SdkSource,
}

impl ScaffoldOptions {
    /// Options with the defaults: directory `./<name>`, no force, the SDK
    /// from crates.io at this workspace's version.
    pub fn new(name: impl Into<String>, lang: Lang) -> Self {
        let name = name.into();
        ScaffoldOptions {
            dir: PathBuf::from(".").join(&name),
            name,
            lang,
            force: false,
            sdk: SdkSource::default(),
        }
    }
}

/// Why scaffolding failed.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name breaks [`NAME_RULE`].
    #[error("invalid spacecore name {name:?}: {reason}; a name must match {NAME_RULE}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Neither `rust` nor `go`.
    #[error("unknown language {0:?}: expected rust or go")]
    UnknownLang(String),
    /// The target directory has files and `force` is off.
    #[error(
        "target directory {} exists and is not empty; use --force to overwrite the scaffold's files in it",
        dir.display()
    )]
    NotEmpty {
        /// The target directory.
        dir: PathBuf,
    },
    /// The target (or a path the template needs as a directory) is a file.
    #[error("{} exists and is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A template failed to render (a bug in the templates).
    #[error("rendering template {template}: {source:#}")]
    Render {
        /// The template's name.
        template: &'static str,
        /// The minijinja error.
        #[source]
        source: minijinja::Error,
    },
    /// A file system operation failed (anything written was rolled back).
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError {
    let path = path.to_path_buf();
    move |source| ScaffoldError::Io {
        action,
        path,
        source,
    }
}

/// Checks a spacecore name: `^[a-z][a-z0-9-]{0,62}$`. The name becomes the
/// crate, binary and Go package directory name; where an identifier is
/// needed, `-` becomes `_`.
pub fn validate_name(name: &str) -> Result<(), ScaffoldError> {
    let bad = |reason: String| {
        Err(ScaffoldError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    let Some(first) = name.chars().next() else {
        return bad("it is empty".into());
    };
    if !first.is_ascii_lowercase() {
        return bad(format!("it starts with {first:?}, not a lowercase letter"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return bad(format!("it contains {c:?}"));
    }
    if name.len() > 63 {
        return bad(format!(
            "it is {} characters long, at most 63 allowed",
            name.len()
        ));
    }
    Ok(())
}

/// One embedded template: its name, its text, where it goes in the project,
/// and whether the output is executable. `render: false` copies verbatim.
struct Template {
    name: &'static str,
    source: &'static str,
    dest: &'static str,
    executable: bool,
    render: bool,
}

const fn tpl(name: &'static str, source: &'static str, dest: &'static str) -> Template {
    Template {
        name,
        source,
        dest,
        executable: false,
        render: true,
    }
}

const COMMON: &[Template] = &[
    tpl(
        "common/README.md",
        include_str!("../templates/common/README.md.j2"),
        "README.md",
    ),
    tpl(
        "common/hac.toml",
        include_str!("../templates/common/hac.toml.j2"),
        "hac.toml",
    ),
    Template {
        name: "common/sc.proto",
        source: SC_PROTO,
        dest: "proto/sc.proto",
        executable: false,
        render: false,
    },
];

const RUST: &[Template] = &[
    tpl(
        "rust/Cargo.toml",
        include_str!("../templates/rust/Cargo.toml.j2"),
        "Cargo.toml",
    ),
    tpl(
        "rust/main.rs",
        include_str!("../templates/rust/main.rs.j2"),
        "src/main.rs",
    ),
    tpl(
        "rust/spacecore.rs",
        include_str!("../templates/rust/spacecore.rs.j2"),
        "src/spacecore.rs",
    ),
    tpl(
        "rust/gitignore",
        include_str!("../templates/rust/gitignore.j2"),
        ".gitignore",
    ),
];

const GO: &[Template] = &[
    tpl(
        "go/main.go",
        include_str!("../templates/go/main.go.j2"),
        "main.go",
    ),
    tpl(
        "go/plugin.go",
        include_str!("../templates/go/plugin.go.j2"),
        "plugin.go",
    ),
    tpl(
        "go/spacecore.go",
        include_str!("../templates/go/spacecore.go.j2"),
        "spacecore.go",
    ),
    Template {
        name: "go/build.sh",
        source: include_str!("../templates/go/build.sh.j2"),
        dest: "build.sh",
        executable: true,
        render: true,
    },
    tpl(
        "go/gitignore",
        include_str!("../templates/go/gitignore.j2"),
        ".gitignore",
    ),
];

/// The variables every template sees (documented in `docs/scaffold.md`).
#[derive(Debug, Serialize)]
struct Context {
    /// The spacecore name: crate, binary, Go package directory.
    name: String,
    /// `name` with `-` → `_` (identifiers, environment variable stems).
    ident: String,
    /// `name` in UpperCamelCase: the Rust spacecore type.
    type_name: String,
    /// One line describing the spacecore (hac.toml, Cargo.toml).
    description: String,
    /// `description` as a quoted TOML string.
    description_toml: String,
    /// `"rust"` or `"go"`.
    lang: &'static str,
    /// Where the built binary ends up, relative to the project.
    binary: String,
    /// The right-hand side of the `vimana-spacecore` dependency line.
    sdk_dependency: String,
    /// The vimana version that generated the project.
    vimana_version: &'static str,
    /// The Go import path of the package in the build GOPATH.
    go_package: String,
}

/// `my-core-2` → `MyCore2`.
fn camel_case(name: &str) -> String {
    name.split('-')
        .flat_map(|part| {
            let mut cs = part.chars();
            cs.next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(cs)
        })
        .collect()
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn context(opts: &ScaffoldOptions) -> Result<Context, ScaffoldError> {
    let name = opts.name.clone();
    let ident = name.replace('-', "_");
    let description = format!("{name}: a vimana spacecore");
    let sdk_dependency = match &opts.sdk {
        SdkSource::CratesIo { version } => toml_str(version),
        SdkSource::Path(p) => {
            let abs = std::path::absolute(p).map_err(io_err("resolve SDK path", p))?;
            format!("{{ path = {} }}", toml_str(&abs.to_string_lossy()))
        }
    };
    Ok(Context {
        ident: ident.clone(),
        type_name: camel_case(&name),
        description_toml: toml_str(&description),
        description,
        lang: opts.lang.as_str(),
        binary: match opts.lang {
            Lang::Rust => format!("./target/debug/{name}"),
            Lang::Go => format!("./{name}"),
        },
        sdk_dependency,
        vimana_version: env!("CARGO_PKG_VERSION"),
        go_package: format!("vimana.local/{name}"),
        name,
    })
}

/// A rendered file: its path relative to the project, contents, mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative path inside the project, `/`-separated.
    pub path: &'static str,
    /// The file's contents.
    pub contents: String,
    /// Whether the file gets mode 0755 (else 0644).
    pub executable: bool,
}

/// Renders the project's files in memory without touching the disk
/// (what [`scaffold`] writes).
pub fn render(opts: &ScaffoldOptions) -> Result<Vec<RenderedFile>, ScaffoldError> {
    validate_name(&opts.name)?;
    let ctx = context(opts)?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    let specific = match opts.lang {
        Lang::Rust => RUST,
        Lang::Go => GO,
    };
    COMMON
        .iter()
        .chain(specific)
        .map(|t| {
            let contents = if t.render {
                env.render_str(t.source, &ctx)
                    .map_err(|source| ScaffoldError::Render {
                        template: t.name,
                        source,
                    })?
            } else {
                t.source.to_string()
            };
            Ok(RenderedFile {
                path: t.dest,
                contents,
                executable: t.executable,
            })
        })
        .collect()
}

/// Writes the project described by `opts` and returns the files written.
///
/// An existing non-empty `opts.dir` is refused unless `opts.force`; with
/// it, only the template's files are overwritten. Each file is written to a
/// temporary sibling and renamed into place; on any failure the run's
/// changes are undone before the error is returned.
pub fn scaffold(opts: &ScaffoldOptions) -> Result<Vec<PathBuf>, ScaffoldError> {
    let files = render(opts)?;
    let dir = &opts.dir;
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(ScaffoldError::NotADirectory(dir.clone())),
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir).map_err(io_err("read directory", dir))?;
            if entries.next().is_some() && !opts.force {
                return Err(ScaffoldError::NotEmpty { dir: dir.clone() });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect", dir)(e)),
    }

    let mut tx = Transaction::default();
    match write_all(&mut tx, dir, &files) {
        Ok(written) => Ok(written),
        Err(e) => {
            tx.rollback();
            Err(e)
        }
    }
}

fn write_all(
    tx: &mut Transaction,
    dir: &Path,
    files: &[RenderedFile],
) -> Result<Vec<PathBuf>, ScaffoldError> {
    tx.create_dir_all(dir)?;
    let mut written = Vec::with_capacity(files.len());
    for f in files {
        let path = f.path.split('/').fold(dir.to_path_buf(), |p, c| p.join(c));
        if let Some(parent) = path.parent() {
            tx.create_dir_all(parent)?;
        }
        tx.write_file(&path, f.contents.as_bytes(), f.executable)?;
        written.push(path);
    }
    Ok(written)
}

/// What one scaffold run changed, in order, so it can be undone.
#[derive(Default)]
struct Transaction {
    created_dirs: Vec<PathBuf>,
    created_files: Vec<PathBuf>,
    /// Files overwritten under `force`, with their previous contents.
    replaced: Vec<(PathBuf, Vec<u8>, std::fs::Permissions)>,
}

impl Transaction {
    fn create_dir_all(&mut self, dir: &Path) -> Result<(), ScaffoldError> {
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if d.as_os_str().is_empty() {
                break;
            }
            match std::fs::metadata(d) {
                Ok(m) if m.is_dir() => break,
                Ok(_) => return Err(ScaffoldError::NotADirectory(d.to_path_buf())),
                Err(_) => missing.push(d.to_path_buf()),
            }
            cur = d.parent();
        }
        for d in missing.into_iter().rev() {
            match std::fs::create_dir(&d) {
                Ok(()) => self.created_dirs.push(d),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => {}
                Err(e) => return Err(io_err("create directory", &d)(e)),
            }
        }
        Ok(())
    }

    fn write_file(
        &mut self,
        path: &Path,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), ScaffoldError> {
        let previous = match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(ScaffoldError::Io {
                    action: "write",
                    path: path.to_path_buf(),
                    source: std::io::Error::other("a directory is in the way"),
                });
            }
            Ok(m) => Some((
                std::fs::read(path).map_err(io_err("read", path))?,
                m.permissions(),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("inspect", path)(e)),
        };
        let mode = if executable { 0o755 } else { 0o644 };
        atomic_write(path, contents, mode)?;
        match previous {
            Some((old, perms)) => self.replaced.push((path.to_path_buf(), old, perms)),
            None => self.created_files.push(path.to_path_buf()),
        }
        Ok(())
    }

    /// Best effort: undo everything, newest first.
    fn rollback(self) {
        for f in self.created_files.iter().rev() {
            let _ = std::fs::remove_file(f);
        }
        for (path, old, perms) in self.replaced.iter().rev() {
            if atomic_write(path, old, 0o644).is_ok() {
                let _ = std::fs::set_permissions(path, perms.clone());
            }
        }
        for d in self.created_dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[cfg(unix)]
fn set_mode(file: &std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &std::fs::File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Writes `contents` to a temporary sibling of `path`, syncs it, and
/// renames it over `path`: readers see the old file or the whole new one.
fn atomic_write(path: &Path, contents: &[u8], mode: u32) -> Result<(), ScaffoldError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.scaffold-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(contents).map_err(io_err("write", &tmp))?;
        set_mode(&f, mode).map_err(io_err("set permissions of", &tmp))?;
        f.sync_all().map_err(io_err("sync", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io_err("rename into place", path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
