use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// RFC 9457 problem details, the body of every API error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// One sentence: what was wrong and what to do.
    pub detail: String,
}

impl Problem {
    /// Builds a problem whose type is `urn:vimana:problem:<slug>`.
    pub fn new(slug: &str, title: &str, status: u16, detail: impl Into<String>) -> Self {
        Self {
            type_: format!("urn:vimana:problem:{slug}"),
            title: title.to_string(),
            status,
            detail: detail.into(),
        }
    }
}
