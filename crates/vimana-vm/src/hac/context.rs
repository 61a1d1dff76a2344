//! The validation context: diagnostics, warnings, and path resolution.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::ParseOptions;
use super::error::{HacDiagnostic, HacError, Source};
use super::raw::Text;

/// What a path must be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Anything but a directory (a file or a block device).
    File,
    Dir,
    Any,
}

/// What one validation run needs: the source for diagnostics, the options,
/// and the warnings collected so far.
pub(crate) struct Cx<'a> {
    pub src: &'a Source,
    pub opts: &'a ParseOptions,
    pub base_dir: PathBuf,
    pub warnings: Vec<HacDiagnostic>,
}

impl Cx<'_> {
    pub fn diag(
        &self,
        code: &'static str,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> HacDiagnostic {
        let (message, label, help) = (message.into(), label.into(), help.into());
        HacDiagnostic::new(self.src, code, span, message, label, help)
    }

    pub fn err(
        &self,
        code: &'static str,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> HacError {
        self.diag(code, span, message, label, help).into()
    }

    /// Resolves a path value against the base directory and, when paths are
    /// checked, requires it to exist as `want` says.
    pub fn path(
        &self,
        v: &Text,
        what: &str,
        code: &'static str,
        want: Want,
    ) -> Result<PathBuf, HacError> {
        let raw = v.get_ref();
        if raw.trim().is_empty() {
            return Err(self.err(
                code,
                v.span(),
                format!("{what} is empty"),
                "empty path",
                format!("give the path of the {what}, or remove the key"),
            ));
        }
        let path = self.base_dir.join(raw);
        if !self.opts.check_paths {
            return Ok(path);
        }
        let help = if raw.starts_with('~') {
            "write the full path: `~` is not expanded".to_string()
        } else {
            format!(
                "fix the path; a relative path is relative to {}",
                dir_name(&self.base_dir)
            )
        };
        match std::fs::metadata(&path) {
            Err(e) => Err(self.err(
                code,
                v.span(),
                format!("{what} {raw:?} cannot be used: {} ({e})", path.display()),
                "not found",
                help,
            )),
            Ok(m) if want == Want::Dir && !m.is_dir() => Err(self.err(
                code,
                v.span(),
                format!("{what} {raw:?} is not a directory"),
                "not a directory",
                help,
            )),
            Ok(m) if want == Want::File && m.is_dir() => Err(self.err(
                code,
                v.span(),
                format!("{what} {raw:?} is a directory, not a file"),
                "a directory",
                help,
            )),
            Ok(_) => Ok(path),
        }
    }
}

fn dir_name(dir: &Path) -> String {
    if dir.as_os_str().is_empty() {
        "the current directory".into()
    } else {
        dir.display().to_string()
    }
}

/// One value that may come from either of two tables; both set is an error
/// pointing at the second.
pub(crate) fn either(
    cx: &Cx<'_>,
    key: &str,
    a: Option<Text>,
    a_table: &str,
    b: Option<Text>,
    b_table: &str,
) -> Result<Option<Text>, HacError> {
    match (a, b) {
        (Some(_), Some(b)) => Err(cx.err(
            "vimana::hac::conflict",
            b.span(),
            format!("`{key}` is set in both {a_table} and {b_table}"),
            "second setting",
            format!("keep `{key}` in one table only"),
        )),
        (a, b) => Ok(a.or(b)),
    }
}
