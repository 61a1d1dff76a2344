use crate::{NameError, Problem};

/// Errors the core returns for an [`crate::Action`]; each maps to one HTTP
/// status and one problem type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or breaks a rule.
    #[error("{0}")]
    BadRequest(String),
    /// A name breaks the naming rule.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No such workload.
    #[error("no workload named {0:?}; `vimana status` lists the workloads that exist")]
    NotFound(String),
    /// No such resource (the message names kind, name and how to list them).
    #[error("{0}")]
    ResourceNotFound(String),
    /// A resource breaks a rule (the message names document, field and rule).
    #[error("{0}")]
    InvalidResource(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The request body is too large.
    #[error("request body is larger than the limit of {0} bytes; send a smaller body")]
    PayloadTooLarge(usize),
    /// The workload could not be launched or talked to.
    #[error("{0}")]
    Workload(String),
    /// The daemon could not do its own part (store, filesystem).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A rejected resource: the message names file, document, resource,
    /// field, rule and fix, and says that nothing was stored.
    pub fn invalid_resource(e: &vimana_resources::ResourceError) -> Self {
        ApiError::InvalidResource(format!(
            "{e} (rule {}); fix: {}; nothing was applied",
            e.rule(),
            e.fix()
        ))
    }

    /// The HTTP status this error maps to.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidName(_) => 400,
            ApiError::NotFound(_) | ApiError::ResourceNotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::Workload(_) | ApiError::InvalidResource(_) => 422,
            ApiError::Internal(_) => 500,
        }
    }

    /// The RFC 9457 rendering of this error.
    pub fn to_problem(&self) -> Problem {
        let (slug, title) = match self {
            ApiError::BadRequest(_) => ("bad-request", "Bad request"),
            ApiError::InvalidName(_) => ("invalid-name", "Invalid name"),
            ApiError::NotFound(_) | ApiError::ResourceNotFound(_) => ("not-found", "Not found"),
            ApiError::InvalidResource(_) => ("invalid-resource", "Invalid resource"),
            ApiError::Conflict(_) => ("conflict", "Conflict"),
            ApiError::PayloadTooLarge(_) => ("payload-too-large", "Payload too large"),
            ApiError::Workload(_) => ("workload-failed", "Workload failed"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        };
        Problem::new(slug, title, self.status(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_carries_status_and_detail() {
        let p = ApiError::NotFound("x".into()).to_problem();
        assert_eq!(p.status, 404);
        assert_eq!(p.type_, "urn:vimana:problem:not-found");
        assert!(p.detail.contains("vimana status"));
        let json = serde_json::to_value(&p).unwrap();
        assert!(json.get("type").is_some() && json.get("title").is_some());
    }
}
