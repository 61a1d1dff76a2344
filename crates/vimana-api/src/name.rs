use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A validated workload name: `^[a-z][a-z0-9-]{0,62}$`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-z][a-z0-9-]{0,62}$")]
pub struct WorkloadName(String);

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid name {name:?}: names start with a lowercase letter, then up to 62 lowercase letters, digits or '-' (pattern ^[a-z][a-z0-9-]{{0,62}}$); pick a name like \"my-node\""
)]
pub struct NameError {
    /// The name that was refused.
    pub name: String,
}

impl WorkloadName {
    /// Validates `name` against `^[a-z][a-z0-9-]{0,62}$`.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        let mut chars = name.chars();
        let ok = matches!(chars.next(), Some('a'..='z'))
            && name.len() <= 63
            && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'));
        if ok {
            Ok(Self(name))
        } else {
            Err(NameError { name })
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkloadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WorkloadName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        WorkloadName::new(s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for WorkloadName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkloadName::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for n in ["a", "celestia-light", "x9", &format!("a{}", "b".repeat(62))] {
            assert!(WorkloadName::new(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn refuses_invalid_names() {
        for n in [
            "",
            "9a",
            "-a",
            "A",
            "a_b",
            "a.b",
            &format!("a{}", "b".repeat(63)),
            "é",
        ] {
            let err = WorkloadName::new(n).unwrap_err();
            assert!(err.to_string().contains("^[a-z][a-z0-9-]{0,62}$"));
        }
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<WorkloadName>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<WorkloadName>("\"Bad\"").is_err());
    }
}
