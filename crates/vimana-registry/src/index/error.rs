//! `IndexError`: a diagnostic pointing at the offending place in the index.

use std::fmt;
use std::ops::Range;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// An index that does not parse or breaks a rule. Rendered with miette it
/// shows the file name, the source line and a label at the exact place.
#[derive(Debug)]
pub struct IndexError {
    /// The rule that was broken, e.g. `index::sha256` (the diagnostic code).
    pub rule: &'static str,
    /// One-line description of the problem.
    pub message: String,
    /// Text of the label under the span.
    pub label: String,
    /// How to fix it.
    pub help: String,
    /// Byte range inside the source, when known.
    pub span: Option<Range<usize>>,
    /// 1-based line and column of the span start, when known.
    pub line_col: Option<(usize, usize)>,
    source_name: String,
    source: NamedSource<String>,
}

impl IndexError {
    pub(crate) fn new(
        name: &str,
        text: &str,
        rule: &'static str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        let span = span.map(|r| {
            let start = r.start.min(text.len());
            start..r.end.clamp(start, text.len())
        });
        let line_col = span.as_ref().map(|r| line_col(text, r.start));
        IndexError {
            rule,
            message: message.into(),
            label: label.into(),
            help: help.into(),
            span,
            line_col,
            source_name: name.to_string(),
            source: NamedSource::new(name, text.to_string()).with_language("toml"),
        }
    }

    /// The name of the index file (or URL) the error is about.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }
}

/// 1-based line and column (in characters) of byte `offset`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source_name)?;
        if let Some((line, col)) = self.line_col {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for IndexError {}

impl Diagnostic for IndexError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("vimana::{}", self.rule)))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.help.is_empty()).then(|| Box::new(&self.help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span.clone()?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.label.clone()),
            span.start..span.end,
        ))))
    }
}
