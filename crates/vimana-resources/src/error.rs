//! [`ResourceError`]: every rejection names the file, the document, the
//! field path, the rule that was broken and how to fix it.

use std::fmt;

use miette::Diagnostic;

use crate::ResourceKind;

/// Where a resource came from: a file name (`-` for stdin) and the 1-based
/// index of its YAML document in that file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The file name as given to [`crate::parse_documents`].
    pub file: String,
    /// 1-based index of the document (every `---` starts a new one, empty
    /// documents included).
    pub document: usize,
}

/// The resource an error is about: `deploy.yaml document 2 (Domain "example")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// File and document, when known.
    pub origin: Option<Origin>,
    /// The resource kind, when it could be read.
    pub kind: Option<ResourceKind>,
    /// `metadata.name`, when it could be read.
    pub name: Option<String>,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = match (&self.kind, &self.name) {
            (Some(kind), Some(name)) => Some(format!("{kind} {name:?}")),
            (Some(kind), None) => Some(kind.to_string()),
            (None, Some(name)) => Some(format!("{name:?}")),
            (None, None) => None,
        };
        match (&self.origin, subject) {
            (Some(o), Some(s)) => write!(f, "{} document {} ({s})", o.file, o.document),
            (Some(o), None) => write!(f, "{} document {}", o.file, o.document),
            (None, Some(s)) => f.write_str(&s),
            (None, None) => f.write_str("resource"),
        }
    }
}

/// The rule a resource broke; also the diagnostic code
/// (`vimana::resources::<rule>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// YAML that does not parse.
    Syntax,
    /// A document that is not a mapping.
    Document,
    /// `apiVersion` is not `api.vimana.host/v1alpha1`.
    ApiVersion,
    /// `kind` is not one of Vimana, Domain, Server, Component.
    Kind,
    /// Unknown or missing field, or a value of the wrong type.
    Schema,
    /// `metadata.name` is not a valid name.
    Name,
    /// A string that must not be empty is.
    Required,
    /// Domain id: exactly 32 lowercase hex digits.
    DomainId,
    /// Server id: a DNS label.
    ServerId,
    /// A hostname (alias, canonical superdomain).
    Hostname,
    /// A fully qualified gRPC service name.
    ServiceName,
    /// `noneBut` and `allBut` together.
    Reflection,
    /// A semantic version (no build metadata, at most 63 characters).
    Semver,
    /// A Component image (local `.wasm` path or OCI reference).
    Image,
    /// `deadlineMs` must be positive.
    Deadline,
    /// Two documents with the same kind and name.
    DuplicateName,
    /// Two resources with the same id.
    DuplicateId,
    /// A reference to a Vimana, Domain or Server that does not exist.
    UnknownReference,
    /// A `versionWeights` key without a Component of that version.
    MissingComponent,
    /// A Component version re-applied with a different spec.
    ImmutableVersion,
}

impl Rule {
    /// The kebab-case name of the rule.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Syntax => "syntax",
            Rule::Document => "document",
            Rule::ApiVersion => "api-version",
            Rule::Kind => "kind",
            Rule::Schema => "schema",
            Rule::Name => "name",
            Rule::Required => "required",
            Rule::DomainId => "domain-id",
            Rule::ServerId => "server-id",
            Rule::Hostname => "hostname",
            Rule::ServiceName => "service-name",
            Rule::Reflection => "reflection",
            Rule::Semver => "semver",
            Rule::Image => "image",
            Rule::Deadline => "deadline",
            Rule::DuplicateName => "duplicate-name",
            Rule::DuplicateId => "duplicate-id",
            Rule::UnknownReference => "unknown-reference",
            Rule::MissingComponent => "missing-component",
            Rule::ImmutableVersion => "immutable-version",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected resource file or resource set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// The YAML does not parse.
    #[error("{file}:{line}:{column}: YAML syntax error in document {document}: {message}")]
    Syntax {
        /// File name (`-` for stdin).
        file: String,
        /// 1-based document index.
        document: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The document does not match the resource schema (unknown field,
    /// missing field, wrong type). `message` carries serde_yaml's field path.
    #[error("{context}: {message}")]
    Schema {
        /// The resource.
        context: Box<Context>,
        /// 1-based line and column, when known.
        position: Option<(usize, usize)>,
        /// The deserializer's message, starting with the field path.
        message: String,
        /// How to fix it.
        fix: String,
    },
    /// A field breaks a rule.
    #[error("{context}: {field} {message}")]
    Invalid {
        /// The resource.
        context: Box<Context>,
        /// Field path, e.g. `spec.versionWeights["2.0.0"]`.
        field: String,
        /// The rule.
        rule: Rule,
        /// What is wrong (follows the field path).
        message: String,
        /// How to fix it.
        fix: String,
    },
}

impl ResourceError {
    /// The rule that was broken.
    pub fn rule(&self) -> Rule {
        match self {
            ResourceError::Syntax { .. } => Rule::Syntax,
            ResourceError::Schema { .. } => Rule::Schema,
            ResourceError::Invalid { rule, .. } => *rule,
        }
    }

    /// The field path, when the error is about one field.
    pub fn field(&self) -> Option<&str> {
        match self {
            ResourceError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// How to fix it.
    pub fn fix(&self) -> String {
        match self {
            ResourceError::Syntax { line, column, .. } => {
                format!("correct the YAML near line {line}, column {column}")
            }
            ResourceError::Schema { fix, .. } | ResourceError::Invalid { fix, .. } => fix.clone(),
        }
    }

    pub(crate) fn invalid(
        context: &Context,
        field: impl Into<String>,
        rule: Rule,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ResourceError::Invalid {
            context: Box::new(context.clone()),
            field: field.into(),
            rule,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl Diagnostic for ResourceError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("vimana::resources::{}", self.rule())))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.fix()))
    }
}
