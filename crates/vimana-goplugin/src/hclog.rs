//! Parsing of plugin stderr lines: hclog JSON records or raw text.

use serde_json::{Map, Value};

/// One line of plugin stderr.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// hclog `@level` (trace, debug, info, warn, error), if structured.
    pub level: Option<String>,
    /// hclog `@message`, or the whole raw line.
    pub message: String,
    /// Everything else: `@timestamp`, `@module` and the extra key/values.
    pub fields: Map<String, Value>,
    /// True when the line was an hclog JSON record.
    pub structured: bool,
}

impl LogLine {
    /// A raw (unstructured) line.
    pub fn raw(line: &str) -> Self {
        Self {
            level: None,
            message: line.to_string(),
            fields: Map::new(),
            structured: false,
        }
    }
}

/// Parses one stderr line. JSON objects with `@level` and `@message` become
/// structured records; anything else is kept raw (trailing newline removed).
pub fn parse_hclog_line(line: &str) -> LogLine {
    let line = line.trim_end_matches(['\n', '\r']);
    let trimmed = line.trim_start();
    if !trimmed.starts_with('{') {
        return LogLine::raw(line);
    }
    let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(trimmed) else {
        return LogLine::raw(line);
    };
    let (Some(Value::String(_)), Some(Value::String(_))) =
        (fields.get("@level"), fields.get("@message"))
    else {
        return LogLine::raw(line);
    };
    let level = match fields.remove("@level") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let message = match fields.remove("@message") {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    LogLine {
        level,
        message,
        fields,
        structured: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_line() {
        let l = parse_hclog_line(
            r#"{"@level":"debug","@message":"plugin address","@timestamp":"2024-01-01T00:00:00.000000Z","@module":"core","network":"unix","n":3}"#,
        );
        assert!(l.structured);
        assert_eq!(l.level.as_deref(), Some("debug"));
        assert_eq!(l.message, "plugin address");
        assert_eq!(l.fields["@module"], "core");
        assert_eq!(l.fields["network"], "unix");
        assert_eq!(l.fields["n"], 3);
        assert!(l.fields.contains_key("@timestamp"));
        assert!(!l.fields.contains_key("@level"));
    }

    #[test]
    fn raw_lines() {
        for s in [
            "panic: oops",
            "{not json",
            r#"{"msg":"no hclog keys"}"#,
            r#"[1,2]"#,
            "",
        ] {
            let l = parse_hclog_line(s);
            assert!(!l.structured, "{s}");
            assert_eq!(l.message, s);
            assert_eq!(l.level, None);
            assert!(l.fields.is_empty());
        }
        assert_eq!(parse_hclog_line("hello\r\n").message, "hello");
    }
}
