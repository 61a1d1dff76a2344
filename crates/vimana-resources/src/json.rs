//! Resources as JSON (what the daemon receives and stores), and the kind
//! names a user may type (`domains`, `domain`, `dom`).

use serde::de::DeserializeOwned;

use crate::check::check_resource;
use crate::error::{Context, Origin, ResourceError};
use crate::parse::header;
use crate::set::ResourceRef;
use crate::types::{Object, Resource, ResourceKind, Status};

impl ResourceKind {
    /// The lowercase plural, as in `vimana get domains`.
    pub fn plural(self) -> &'static str {
        match self {
            ResourceKind::Vimana => "vimanas",
            ResourceKind::Domain => "domains",
            ResourceKind::Server => "servers",
            ResourceKind::Component => "components",
        }
    }

    /// A kind as users type it, any case: the kind (`Domain`), its plural
    /// (`domains`) or short form (`vm`, `dom`, `srv`, `comp`).
    pub fn from_alias(alias: &str) -> Option<Self> {
        let a = alias.to_ascii_lowercase();
        Self::ALL.into_iter().find(|k| {
            let short: &[&str] = match k {
                ResourceKind::Vimana => &["vm", "vim"],
                ResourceKind::Domain => &["dom", "dm"],
                ResourceKind::Server => &["srv", "svr"],
                ResourceKind::Component => &["comp", "cmp"],
            };
            a == k.as_str().to_ascii_lowercase() || a == k.plural() || short.contains(&a.as_str())
        })
    }
}

impl Resource {
    /// `Kind/name` of this resource.
    pub fn reference(&self) -> ResourceRef {
        ResourceRef {
            kind: self.kind(),
            name: self.name().to_owned(),
        }
    }

    /// The observed state, if any.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Resource::Vimana(o) => o.status.as_ref(),
            Resource::Domain(o) => o.status.as_ref(),
            Resource::Server(o) => o.status.as_ref(),
            Resource::Component(o) => o.status.as_ref(),
        }
    }

    /// Replaces the observed state.
    pub fn set_status(&mut self, status: Option<Status>) {
        match self {
            Resource::Vimana(o) => o.status = status,
            Resource::Domain(o) => o.status = status,
            Resource::Server(o) => o.status = status,
            Resource::Component(o) => o.status = status,
        }
    }

    /// Sets where the resource came from (named in errors).
    pub fn set_origin(&mut self, origin: Option<Origin>) {
        match self {
            Resource::Vimana(o) => o.origin = origin,
            Resource::Domain(o) => o.origin = origin,
            Resource::Server(o) => o.origin = origin,
            Resource::Component(o) => o.origin = origin,
        }
    }

    /// A resource as it was stored (status kept, no rules checked).
    pub fn from_json(value: serde_json::Value) -> Result<Resource, ResourceError> {
        decode(None, value)
    }

    /// A resource sent by a client: schema, `apiVersion`, `kind` and every
    /// field rule are checked as [`crate::parse_documents`] does, `status`
    /// is dropped. `origin` names the file and document in errors.
    pub fn parse_json(
        origin: Option<Origin>,
        value: serde_json::Value,
    ) -> Result<Resource, ResourceError> {
        let mut resource = decode(origin, value)?;
        resource.clear_status();
        check_resource(&resource)?;
        Ok(resource)
    }
}

fn decode(origin: Option<Origin>, value: serde_json::Value) -> Result<Resource, ResourceError> {
    let at = origin.clone().unwrap_or_else(|| Origin {
        file: "request".to_owned(),
        document: 1,
    });
    let yaml = serde_yaml::to_value(&value).map_err(|e| ResourceError::Schema {
        context: Box::new(Context {
            origin: origin.clone(),
            kind: None,
            name: None,
        }),
        position: None,
        message: e.to_string(),
        fix: "send a JSON object with apiVersion, kind, metadata and spec".to_owned(),
    })?;
    let kind = header(&at, &yaml).map_err(|e| without_origin(e, origin.is_none()))?;
    let context = Context {
        origin: origin.clone(),
        kind: Some(kind),
        name: value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
    };
    let mut resource = match kind {
        ResourceKind::Vimana => Resource::Vimana(typed(value, &context)?),
        ResourceKind::Domain => Resource::Domain(typed(value, &context)?),
        ResourceKind::Server => Resource::Server(typed(value, &context)?),
        ResourceKind::Component => Resource::Component(typed(value, &context)?),
    };
    resource.set_origin(origin);
    Ok(resource)
}

fn without_origin(e: ResourceError, strip: bool) -> ResourceError {
    match e {
        ResourceError::Invalid {
            mut context,
            field,
            rule,
            message,
            fix,
        } if strip => {
            context.origin = None;
            ResourceError::Invalid {
                context,
                field,
                rule,
                message,
                fix,
            }
        }
        other => other,
    }
}

fn typed<S: DeserializeOwned>(
    value: serde_json::Value,
    context: &Context,
) -> Result<Object<S>, ResourceError> {
    serde_json::from_value(value).map_err(|e| {
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
            position: None,
            message,
            fix: fix.to_owned(),
        }
    })
}
