//! The validation context: diagnostics, warnings, and path resolution.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::ParseOptions;
use super::error::{HacDiagnostic, HacError, Source};
use super::raw::Text;
pub(crate) use super::rules::Want;
use super::rules::{self, Broken};

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
        rules::existing(&path, raw, what, code, want, &dir_name(&self.base_dir))
            .map_err(|b| self.fail(v.span(), b))?;
        Ok(path)
    }

    /// A broken rule, located at `span`.
    pub fn fail(&self, span: Range<usize>, b: Broken) -> HacError {
        self.err(b.code, span, b.message, b.label, b.help)
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
