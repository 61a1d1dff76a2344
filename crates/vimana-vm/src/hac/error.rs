//! [`HacError`] and [`HacDiagnostic`]: one located miette diagnostic per
//! problem, pointing into the `hac.toml` text.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, Severity, SourceCode};

/// Reading or validating a `hac.toml` failed.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum HacError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(
        code(vimana::hac::io),
        help("check that the file exists and that you may read it")
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The text breaks a rule; the diagnostic points at the place.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<HacDiagnostic>),
}

impl HacError {
    /// The located diagnostic, unless this is an I/O error.
    pub fn diagnostic(&self) -> Option<&HacDiagnostic> {
        match self {
            HacError::Invalid(d) => Some(d),
            HacError::Io { .. } => None,
        }
    }

    /// The diagnostic code, e.g. `vimana::hac::unknown_key`.
    pub fn code_str(&self) -> &'static str {
        match self {
            HacError::Io { .. } => "vimana::hac::io",
            HacError::Invalid(d) => d.code,
        }
    }
}

impl From<HacDiagnostic> for HacError {
    fn from(d: HacDiagnostic) -> Self {
        HacError::Invalid(Box::new(d))
    }
}

/// The file a diagnostic is about: its name (as given, e.g. a path) and text.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) text: Arc<str>,
}

/// One problem (an error, or a warning in [`Parsed::warnings`](super::Parsed))
/// located in a `hac.toml`. Rendered with miette it shows the file name, the
/// line and a label under the offending key or value.
#[derive(Clone, Debug)]
pub struct HacDiagnostic {
    code: &'static str,
    message: String,
    label: String,
    help: String,
    span: Range<usize>,
    line_col: (usize, usize),
    severity: Severity,
    source: NamedSource<Arc<str>>,
}

impl HacDiagnostic {
    pub(crate) fn new(
        src: &Source,
        code: &'static str,
        span: Range<usize>,
        message: String,
        label: String,
        help: String,
    ) -> Self {
        let text: &str = &src.text;
        let start = floor_boundary(text, span.start);
        let end = floor_boundary(text, span.end.max(start));
        HacDiagnostic {
            code,
            message,
            label,
            help,
            span: start..end,
            line_col: line_col(text, start),
            severity: Severity::Error,
            source: NamedSource::new(&src.name, Arc::clone(&src.text)).with_language("toml"),
        }
    }

    pub(crate) fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// The diagnostic code, e.g. `vimana::hac::cpus`.
    pub fn code_str(&self) -> &'static str {
        self.code
    }

    /// One line naming the key or value and the rule it breaks.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The text of the label under the span.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// How to fix it.
    pub fn help_text(&self) -> &str {
        &self.help
    }

    /// Byte range of the offending key or value in the source text.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// 1-based line and column (in characters) where the span starts.
    pub fn line_col(&self) -> (usize, usize) {
        self.line_col
    }

    /// The name of the file the diagnostic is about.
    pub fn source_name(&self) -> &str {
        self.source.name()
    }

    /// Whether this is an error or a warning.
    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }
}

fn floor_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

impl fmt::Display for HacDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, col) = self.line_col;
        write!(f, "{}:{line}:{col}: {}", self.source.name(), self.message)
    }
}

impl std::error::Error for HacDiagnostic {}

impl Diagnostic for HacDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.help.is_empty()).then(|| Box::new(&self.help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.label.clone()),
            self.span.clone(),
        ))))
    }
}
