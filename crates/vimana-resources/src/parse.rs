//! [`parse_documents`]: multi-document YAML to [`Resource`]s.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::check::check_resource;
use crate::error::{Context, Origin, ResourceError, Rule};
use crate::types::{API_VERSION, Object, Resource, ResourceKind};

/// Parses every document of `text` (separated by `---`; empty documents
/// are skipped) into resources and checks each one's fields.
///
/// `file_name` only names the source in errors; pass `-` for stdin.
/// Document indexes in errors are 1-based and count empty documents, so
/// they match the `---` separators in the file. `status` is ignored.
pub fn parse_documents(file_name: &str, text: &str) -> Result<Vec<Resource>, ResourceError> {
    // Pass 1: generic values, for syntax errors and to learn each kind.
    let mut values = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        let value = Value::deserialize(doc).map_err(|e| syntax_error(file_name, document, &e))?;
        values.push(value);
    }

    // Pass 2: typed, from the same documents, so that schema errors keep
    // serde_yaml's field path and position.
    let mut resources = Vec::new();
    for (i, (doc, value)) in serde_yaml::Deserializer::from_str(text)
        .zip(values)
        .enumerate()
    {
        let origin = Origin {
            file: file_name.to_owned(),
            document: i + 1,
        };
        if value.is_null() {
            continue;
        }
        let kind = header(&origin, &value)?;
        let context = Context {
            origin: Some(origin.clone()),
            kind: Some(kind),
            name: value
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        let mut resource = match kind {
            ResourceKind::Vimana => Resource::Vimana(typed(doc, &context)?),
            ResourceKind::Domain => Resource::Domain(typed(doc, &context)?),
            ResourceKind::Server => Resource::Server(typed(doc, &context)?),
            ResourceKind::Component => Resource::Component(typed(doc, &context)?),
        };
        resource.clear_status();
        check_resource(&resource)?;
        resources.push(resource);
    }
    Ok(resources)
}

fn syntax_error(file: &str, document: usize, e: &serde_yaml::Error) -> ResourceError {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    ResourceError::Syntax {
        file: file.to_owned(),
        document,
        line,
        column,
        message: e.to_string(),
    }
}

/// Checks `apiVersion` and `kind` of a non-empty document.
pub(crate) fn header(origin: &Origin, value: &Value) -> Result<ResourceKind, ResourceError> {
    let context = Context {
        origin: Some(origin.clone()),
        kind: None,
        name: None,
    };
    if !value.is_mapping() {
        return Err(ResourceError::invalid(
            &context,
            "(document)",
            Rule::Document,
            "must be a mapping with apiVersion, kind, metadata and spec",
            format!(
                "start the document with `apiVersion: {API_VERSION}` and `kind: Domain` (or Vimana, Server, Component)"
            ),
        ));
    }
    let kind = match value.get("kind") {
        None => {
            return Err(ResourceError::invalid(
                &context,
                "kind",
                Rule::Kind,
                "is missing",
                "add `kind: Vimana`, `Domain`, `Server` or `Component`",
            ));
        }
        Some(k) => match k.as_str().and_then(ResourceKind::parse) {
            Some(kind) => kind,
            None => {
                return Err(ResourceError::invalid(
                    &context,
                    "kind",
                    Rule::Kind,
                    format!(
                        "{} is not one of Vimana, Domain, Server, Component",
                        show(k)
                    ),
                    "use one of the four kinds, spelled exactly",
                ));
            }
        },
    };
    let context = Context {
        kind: Some(kind),
        name: value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        ..context
    };
    match value.get("apiVersion") {
        Some(Value::String(v)) if v == API_VERSION => Ok(kind),
        Some(v) => Err(ResourceError::invalid(
            &context,
            "apiVersion",
            Rule::ApiVersion,
            format!("{} is not supported", show(v)),
            format!("use `apiVersion: {API_VERSION}`"),
        )),
        None => Err(ResourceError::invalid(
            &context,
            "apiVersion",
            Rule::ApiVersion,
            "is missing",
            format!("add `apiVersion: {API_VERSION}`"),
        )),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_else(|_| "value".to_owned()),
    }
}

fn typed<S: DeserializeOwned>(
    doc: serde_yaml::Deserializer<'_>,
    context: &Context,
) -> Result<Object<S>, ResourceError> {
    let mut object: Object<S> = Object::deserialize(doc).map_err(|e| {
        let message = e.to_string();
        let fix = if message.contains("unknown field") {
            "remove the field or correct its spelling (fields are camelCase; the accepted ones are listed)"
        } else if message.contains("missing field") {
            "add the missing field"
        } else {
            "give the field a value of the expected type"
        };
        ResourceError::Schema {
            context: Box::new(context.clone()),
            position: e.location().map(|l| (l.line(), l.column())),
            message,
            fix: fix.to_owned(),
        }
    })?;
    object.origin = context.origin.clone();
    Ok(object)
}
