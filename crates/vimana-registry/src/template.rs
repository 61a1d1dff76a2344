//! Command templates: `{{name}}` placeholders (minijinja-style, no filters
//! or expressions) in the `init` and `start` arrays of a node type.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::error::{RegistryError, Result};

/// Placeholders every node type may use without declaring a flag.
/// `store` and `bin` are filled in by vimana; `network` and `rpc` take their
/// value from the flag of the same name (declared or passed by the user).
pub const BUILTINS: &[&str] = &["store", "network", "rpc", "bin"];

/// One `{{name}}` occurrence: the name and its byte range inside the string
/// (the range covers the braces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placeholder {
    pub name: String,
    pub range: Range<usize>,
}

/// A template that cannot be parsed: the message and the byte range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateSyntaxError {
    pub message: String,
    pub range: Range<usize>,
}

/// Whether `name` may be used as a placeholder or flag name.
pub fn is_placeholder_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Every placeholder in `s`, in order.
pub fn placeholders(s: &str) -> std::result::Result<Vec<Placeholder>, TemplateSyntaxError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(rel) = s[pos..].find("{{") {
        let start = pos + rel;
        let Some(close_rel) = s[start + 2..].find("}}") else {
            return Err(TemplateSyntaxError {
                message: "`{{` without a closing `}}`".into(),
                range: start..s.len(),
            });
        };
        let end = start + 2 + close_rel + 2;
        let name = s[start + 2..end - 2].trim();
        if !is_placeholder_name(name) {
            return Err(TemplateSyntaxError {
                message: format!(
                    "{name:?} is not a placeholder name (a lowercase letter, then a-z, 0-9 or '_'; no filters or expressions)"
                ),
                range: start..end,
            });
        }
        out.push(Placeholder {
            name: name.to_string(),
            range: start..end,
        });
        pos = end;
    }
    Ok(out)
}

/// Replace every placeholder of `template` with its value from `vars`.
pub fn render(template: &str, vars: &BTreeMap<String, String>) -> Result<String> {
    let found = placeholders(template).map_err(|e| RegistryError::Template {
        template: template.to_string(),
        message: e.message,
    })?;
    let mut out = String::with_capacity(template.len());
    let mut last = 0;
    for p in found {
        out.push_str(&template[last..p.range.start]);
        let value = vars.get(&p.name).ok_or_else(|| RegistryError::Template {
            template: template.to_string(),
            message: format!("no value for {{{{{}}}}}: pass --{} <value>", p.name, p.name),
        })?;
        out.push_str(value);
        last = p.range.end;
    }
    out.push_str(&template[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_renders() {
        let t = "--store={{store}}/x{{ network }}";
        let p = placeholders(t).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].name, "network");
        let vars = BTreeMap::from([
            ("store".to_string(), "/s".to_string()),
            ("network".to_string(), "main".to_string()),
        ]);
        assert_eq!(render(t, &vars).unwrap(), "--store=/s/xmain");
    }

    #[test]
    fn rejects_bad_syntax() {
        assert!(placeholders("{{store").is_err());
        assert!(placeholders("{{ a | upper }}").is_err());
        assert!(render("{{x}}", &BTreeMap::new()).is_err());
    }
}
