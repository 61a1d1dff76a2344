//! The naming convention from protobuf names to WIT identifiers.

use crate::MapError;

/// Words that must be written `%word` in WIT text.
const KEYWORDS: &[&str] = &[
    "as",
    "async",
    "bool",
    "borrow",
    "char",
    "constructor",
    "enum",
    "error-context",
    "export",
    "f32",
    "f64",
    "flags",
    "from",
    "func",
    "future",
    "import",
    "include",
    "interface",
    "list",
    "map",
    "option",
    "own",
    "package",
    "record",
    "resource",
    "result",
    "s8",
    "s16",
    "s32",
    "s64",
    "static",
    "stream",
    "string",
    "tuple",
    "type",
    "u8",
    "u16",
    "u32",
    "u64",
    "use",
    "variant",
    "with",
    "world",
];

/// Converts a protobuf identifier to a kebab-case WIT identifier.
///
/// Words split on `_`, `-`, `.`, on lower/digit→upper boundaries and before
/// the last capital of an acronym (`HTTPServer` → `http-server`,
/// `V2Thing` → `v2-thing`). A word starting with a digit is rejected.
pub fn to_kebab(name: &str) -> Result<String, MapError> {
    let invalid = |reason: &str| MapError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let chars: Vec<char> = name.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if matches!(c, '_' | '-' | '.') {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if !c.is_ascii_alphanumeric() {
            return Err(invalid(&format!("character `{c}` is not allowed")));
        }
        if !cur.is_empty() && c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                words.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    if words.is_empty() {
        return Err(invalid("it has no letters"));
    }
    if let Some(w) = words
        .iter()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
    {
        return Err(invalid(&format!(
            "the word `{w}` starts with a digit, which a WIT identifier segment cannot"
        )));
    }
    Ok(words.join("-"))
}

/// Whether a kebab-case identifier is a WIT keyword.
pub fn is_keyword(ident: &str) -> bool {
    KEYWORDS.contains(&ident)
}

/// Writes an identifier for WIT text: keywords get a `%` prefix.
pub fn escape(ident: &str) -> String {
    if is_keyword(ident) {
        format!("%{ident}")
    } else {
        ident.to_string()
    }
}

/// The WIT package (`namespace:name`, unescaped) of a proto package: `foo.bar` →
/// `foo:bar`, `foo` → `foo:grpc`, `a.b.c` → `a:b-c`, `` → `grpc:default`.
pub fn wit_package(proto_package: &str) -> Result<String, MapError> {
    if proto_package.is_empty() {
        return Ok("grpc:default".to_string());
    }
    let segments: Vec<&str> = proto_package.split('.').collect();
    let kebabs = segments
        .iter()
        .map(|s| to_kebab(s))
        .collect::<Result<Vec<_>, _>>()?;
    match kebabs.split_first() {
        Some((ns, [])) => Ok(format!("{ns}:grpc")),
        Some((ns, rest)) => Ok(format!("{ns}:{}", rest.join("-"))),
        None => Ok("grpc:default".to_string()),
    }
}

/// The WIT type name of a message or enum seen from `package`: its name
/// relative to that package (`Outer.Inner` → `outer-inner`), or its full
/// name when it lives elsewhere (`google-protobuf-timestamp`).
pub fn type_name(full_name: &str, package: &str) -> Result<String, MapError> {
    let relative = if package.is_empty() {
        full_name
    } else {
        full_name
            .strip_prefix(package)
            .and_then(|r| r.strip_prefix('.'))
            .unwrap_or(full_name)
    };
    let parts = relative
        .split('.')
        .map(to_kebab)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parts.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_cases() {
        for (input, want) in [
            ("AddFloats", "add-floats"),
            ("add_floats", "add-floats"),
            ("HTTPServer", "http-server"),
            ("V2Thing", "v2-thing"),
            ("int32Value", "int32-value"),
            ("COLOR_RED", "color-red"),
            ("x", "x"),
            ("AdderService", "adder-service"),
        ] {
            assert_eq!(to_kebab(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn kebab_rejects_digit_start_and_symbols() {
        let err = to_kebab("_2d").unwrap_err();
        assert!(err.to_string().contains("starts with a digit"), "{err}");
        assert!(to_kebab("foo_9lives").is_err());
        assert!(to_kebab("héllo").is_err());
        assert!(to_kebab("__").is_err());
    }

    #[test]
    fn keywords_are_escaped() {
        assert_eq!(escape("result"), "%result");
        assert_eq!(escape("type"), "%type");
        assert_eq!(escape("error-context"), "%error-context");
        assert_eq!(escape("x"), "x");
    }

    #[test]
    fn packages() {
        assert_eq!(wit_package("foo.bar").unwrap(), "foo:bar");
        assert_eq!(wit_package("foo").unwrap(), "foo:grpc");
        assert_eq!(wit_package("a.b.c").unwrap(), "a:b-c");
        assert_eq!(wit_package("").unwrap(), "grpc:default");
        assert_eq!(wit_package("my_org.api_v1").unwrap(), "my-org:api-v1");
    }

    #[test]
    fn type_names() {
        assert_eq!(
            type_name("foo.bar.Outer.Inner", "foo.bar").unwrap(),
            "outer-inner"
        );
        assert_eq!(
            type_name("google.protobuf.Timestamp", "foo.bar").unwrap(),
            "google-protobuf-timestamp"
        );
        assert_eq!(type_name("Top", "").unwrap(), "top");
    }
}
