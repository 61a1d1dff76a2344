//! TOML and serde errors → located diagnostics. Unknown keys name their
//! table (found by walking the spanned document to the error's span), the
//! allowed keys, and the closest allowed key.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{HacDiagnostic, Source};

/// Keys people carry over from the other shape: (written, meant).
const ALIASES: &[(&str, &str)] = &[
    ("cores", "cpu"),
    ("cpus", "cpu"),
    ("cpu", "cores"),
    ("cpus", "cores"),
    ("mem", "memory"),
    ("image", "ref"),
    ("reference", "ref"),
    ("forward", "forwards"),
    ("ports", "forwards"),
    ("readonly", "read_only"),
    ("read-only", "read_only"),
    ("container-image", "container_image"),
];

/// Turns a `toml::de::Error` from parsing or deserializing `src` into one
/// diagnostic.
pub(crate) fn from_toml(src: &Source, e: &toml::de::Error) -> HacDiagnostic {
    let message = e
        .message()
        .trim()
        .replace("i64", "an integer")
        .replace("missing field", "missing key");
    let span = e.span().unwrap_or(0..0);
    let path = DeTable::parse(&src.text)
        .ok()
        .and_then(|doc| path_to(doc.get_ref(), span.start, 0));
    let path = path.unwrap_or_default();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return unknown_key(src, span, &path, rest);
    }
    let place = match path.split_last() {
        Some((key, table)) if key.is_empty() => format!("{}: ", table_name(table)),
        Some((key, table)) => format!("{} `{key}`: ", table_name(table)),
        None => String::new(),
    };
    let (code, label, help) = if message.starts_with("missing key") {
        (
            "vimana::hac::missing_key",
            "in this table",
            "add the key; the `vimana_vm::hac` docs list every key",
        )
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        (
            "vimana::hac::invalid_type",
            "wrong type",
            "give the value the type the key expects (see the `vimana_vm::hac` docs)",
        )
    } else {
        (
            "vimana::hac::syntax",
            "here",
            "fix the TOML syntax at the marked place",
        )
    };
    HacDiagnostic::new(
        src,
        code,
        span,
        format!("{place}{message}"),
        label.to_string(),
        help.to_string(),
    )
}

/// `rest` is serde's "`key`, expected one of `a`, `b`" (or "expected `a` or
/// `b`", or "there are no fields").
fn unknown_key(
    src: &Source,
    span: std::ops::Range<usize>,
    path: &[String],
    rest: &str,
) -> HacDiagnostic {
    let mut quoted = rest.split('`').skip(1).step_by(2);
    let key = quoted.next().unwrap_or_default().to_string();
    let allowed: Vec<&str> = quoted.collect();
    let table = table_name(path.split_last().map_or(&[][..], |(_, t)| t));
    let list = if allowed.is_empty() {
        "none".to_string()
    } else {
        allowed.join(", ")
    };
    let help = match closest(&key, &allowed) {
        Some(k) => format!("did you mean `{k}`? Otherwise remove `{key}`"),
        None => format!("remove `{key}` or fix its spelling; {table} takes: {list}"),
    };
    HacDiagnostic::new(
        src,
        "vimana::hac::unknown_key",
        span,
        format!("unknown key `{key}` in {table}; allowed keys: {list}"),
        "unknown key".to_string(),
        help,
    )
}

/// `[hardware]`, `[[volumes]] #2`, `[commands.backup]`, or `the top level`.
fn table_name(path: &[String]) -> String {
    if path.is_empty() {
        return "the top level".to_string();
    }
    let mut out = String::new();
    let mut plain: Vec<&str> = Vec::new();
    for part in path {
        match part.strip_prefix('#') {
            Some(n) => {
                out = format!("[[{}]] #{n}", plain.join("."));
                plain.clear();
            }
            None => plain.push(part),
        }
    }
    match (out.is_empty(), plain.is_empty()) {
        (true, _) => format!("[{}]", plain.join(".")),
        (false, true) => out,
        (false, false) => format!("{out} [{}]", plain.join(".")),
    }
}

/// Path of keys (array items as `#<1-based index>`) to the key or value
/// whose span holds `offset`.
fn path_to(table: &DeTable<'_>, offset: usize, depth: usize) -> Option<Vec<String>> {
    if depth > 32 {
        return None;
    }
    for (key, value) in table.iter() {
        if key.span().contains(&offset) {
            return Some(vec![key.get_ref().to_string()]);
        }
        let inner = match value.get_ref() {
            DeValue::Table(t) => path_to(t, offset, depth + 1),
            DeValue::Array(items) => in_array(items.iter(), offset, depth + 1),
            _ => None,
        };
        if let Some(mut rest) = inner {
            rest.insert(0, key.get_ref().to_string());
            return Some(rest);
        }
        if value.span().contains(&offset) && !value.get_ref().is_table() {
            return Some(vec![key.get_ref().to_string()]);
        }
    }
    None
}

fn in_array<'a, 'i: 'a>(
    items: impl Iterator<Item = &'a Spanned<DeValue<'i>>>,
    offset: usize,
    depth: usize,
) -> Option<Vec<String>> {
    for (i, item) in items.enumerate() {
        if let DeValue::Table(t) = item.get_ref() {
            if let Some(mut rest) = path_to(t, offset, depth) {
                rest.insert(0, format!("#{}", i + 1));
                return Some(rest);
            }
            if item.span().contains(&offset) {
                return Some(vec![format!("#{}", i + 1), String::new()]);
            }
        }
    }
    None
}

/// The allowed key the user most likely meant.
fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    if let Some((_, meant)) = ALIASES
        .iter()
        .find(|(w, m)| *w == key && allowed.contains(m))
    {
        return allowed.iter().copied().find(|a| a == meant);
    }
    allowed
        .iter()
        .copied()
        .map(|a| (distance(key, a), a))
        .filter(|(d, a)| *d <= 2 && *d < a.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// Levenshtein distance (small strings only).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
