//! The `api.vimana.host/v1alpha1` resources of vimana's Wasm runtime —
//! [`Vimana`], [`Domain`], [`Server`] and [`Component`] — parsed from
//! (multi-document) YAML the way the Kubernetes operator accepts them,
//! checked field by field ([`parse_documents`]) and across documents
//! ([`validate`]), and kept in an in-memory [`ResourceSet`].
//!
//! No I/O: the caller reads the file (or stdin, named `-`).

mod check;
mod edit;
mod error;
mod json;
mod parse;
mod set;
mod types;

pub use edit::Dangling;
pub use error::{Context, Origin, ResourceError, Rule};
pub use parse::parse_documents;
pub use set::{ApplyOutcome, ResourceRef, ResourceSet, validate};
pub use types::{
    API_VERSION, Component, ComponentSpec, Condition, DEFAULT_CANONICAL_SUPERDOMAIN, Domain,
    DomainSpec, GrpcSpec, ImageSource, Metadata, Object, ReflectionSpec, Resource, ResourceKind,
    Server, ServerSpec, Status, TlsSpec, Vimana, VimanaSpec, component_name,
};
