//! [`Behaviour`]: variants of the adder's core module, made by splicing a
//! function body (and data segments) into `adder.wat`.

use crate::BuildError;

/// The core module source of the real adder (see its comments for the
/// canonical ABI layout).
pub const WAT: &str = include_str!("../adder.wat");

/// Number of cases of the `vimana:grpc/types.code` enum.
pub const CODE_CASES: u8 = 17;

/// Where `Fail` messages start in linear memory (see `adder.wat`).
const MESSAGE_OFFSET: usize = 64;
/// Longest `Fail` message: it must end before the bump heap at 1024.
pub const MAX_MESSAGE_LEN: usize = 1024 - MESSAGE_OFFSET;

const BODY_BEGIN: &str = ";; @body-begin";
const BODY_END: &str = ";; @body-end";
const DATA: &str = ";; @data";

/// What `add-floats` does: the real adder or a misbehaving variant for
/// tests of the host and the gateway.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// `ok({ result: x + y })`: the real adder.
    Add,
    /// Loops forever; the host must stop it at its deadline.
    Loop,
    /// Grows memory one page at a time until refused, then traps; the host
    /// must report the exhausted memory.
    GrowMemory,
    /// Executes `unreachable`.
    Trap,
    /// Returns `err(status { code, message })`; `code` is the position of
    /// the `vimana:grpc` `code` case (the gRPC code, below 17) and `message`
    /// is at most [`MAX_MESSAGE_LEN`] bytes.
    Fail {
        /// The gRPC status code.
        code: u8,
        /// The status message.
        message: &'static str,
    },
    /// `ok({ result: x + y + offset })`, to tell versions apart.
    Offset(f64),
}

impl Behaviour {
    /// The function body of `add-floats` (params `$x`, `$y`; returns the
    /// pointer to the return area) and the data segments it needs.
    fn body_and_data(self) -> Result<(String, String), BuildError> {
        let body = match self {
            Self::Add => return Ok((String::new(), String::new())),
            Self::Loop => {
                "    ;; spin forever\n    (loop $spin (br $spin))\n    unreachable\n".into()
            }
            Self::GrowMemory => concat!(
                "    ;; grow by one page until memory.grow returns -1, then trap\n",
                "    (block $refused\n",
                "      (loop $grow\n",
                "        (br_if $refused\n",
                "          (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))\n",
                "        (br $grow)))\n",
                "    unreachable\n",
            )
            .into(),
            Self::Trap => "    ;; trap at once\n    unreachable\n".into(),
            Self::Offset(offset) => format!(
                concat!(
                    "    ;; ok(add-floats-response {{ result: x + y + {offset:?} }});\n",
                    "    ;; the offset as its exact bit pattern\n",
                    "    (i32.store8 (i32.const 16) (i32.const 0))\n",
                    "    (f64.store (i32.const 24)\n",
                    "      (f64.add\n",
                    "        (f64.add (local.get $x) (local.get $y))\n",
                    "        (f64.reinterpret_i64 (i64.const {bits:#x}))))\n",
                    "    (i32.const 16)\n",
                ),
                offset = offset,
                bits = offset.to_bits(),
            ),
            Self::Fail { code, message } => {
                if code >= CODE_CASES {
                    return Err(BuildError::InvalidCode(code));
                }
                if message.len() > MAX_MESSAGE_LEN {
                    return Err(BuildError::MessageTooLong(message.len()));
                }
                let body = format!(
                    concat!(
                        "    ;; err(status {{ code: {code}, message }})\n",
                        "    (i32.store8 (i32.const 16) (i32.const 1))\n",
                        "    (i32.store8 (i32.const 24) (i32.const {code}))\n",
                        "    (i32.store (i32.const 28) (i32.const {ptr}))\n",
                        "    (i32.store (i32.const 32) (i32.const {len}))\n",
                        "    (i32.const 16)\n",
                    ),
                    code = code,
                    ptr = MESSAGE_OFFSET,
                    len = message.len(),
                );
                let data = format!(
                    "  ;; the status message\n  (data (i32.const {MESSAGE_OFFSET}) \"{}\")\n",
                    escape(message)
                );
                return Ok((body, data));
            }
        };
        Ok((body, String::new()))
    }
}

/// The WAT of the core module with behaviour `b`: `adder.wat` itself for
/// [`Behaviour::Add`].
pub fn module_wat(b: Behaviour) -> Result<String, BuildError> {
    let (body, data) = b.body_and_data()?;
    if body.is_empty() && data.is_empty() {
        return Ok(WAT.to_owned());
    }
    let begin = WAT
        .find(BODY_BEGIN)
        .ok_or(BuildError::Template(BODY_BEGIN))?;
    let end = WAT.find(BODY_END).ok_or(BuildError::Template(BODY_END))?;
    let data_at = WAT.find(DATA).ok_or(BuildError::Template(DATA))?;
    // Keep the marker lines; put the data after `@data` and replace what
    // lies between the body markers.
    let after_data = line_end(data_at);
    let after_begin = line_end(begin);
    if end < after_begin {
        return Err(BuildError::Template(BODY_END));
    }
    if after_data > begin {
        return Err(BuildError::Template(DATA));
    }
    let mut out = String::with_capacity(WAT.len() + body.len() + data.len());
    out.push_str(&WAT[..after_data]);
    out.push_str(&data);
    out.push_str(&WAT[after_data..after_begin]);
    out.push_str(&body);
    out.push_str("    ");
    out.push_str(&WAT[end..]);
    Ok(out)
}

/// The index just past the end of the line of `WAT` holding `pos`.
fn line_end(pos: usize) -> usize {
    WAT[pos..].find('\n').map_or(WAT.len(), |i| pos + i + 1)
}

/// `s` as the contents of a WAT string literal: printable ASCII as is,
/// everything else (and `"` and `\`) as `\hh` byte escapes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => out.push_str(&format!("\\{b:02x}")),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_non_ascii() {
        assert_eq!(escape(r#"a "b" \ é"#), r#"a \22b\22 \5c \c3\a9"#);
    }

    #[test]
    fn add_is_the_file_itself() {
        assert_eq!(module_wat(Behaviour::Add).ok().as_deref(), Some(WAT));
    }

    #[test]
    fn spliced_modules_parse() {
        for b in [
            Behaviour::Loop,
            Behaviour::GrowMemory,
            Behaviour::Trap,
            Behaviour::Offset(-0.5),
            Behaviour::Fail {
                code: 16,
                message: "no \"token\"",
            },
        ] {
            let text = module_wat(b).unwrap_or_default();
            assert!(text.contains(BODY_BEGIN) && text.contains(BODY_END));
            assert!(wat::parse_str(&text).is_ok(), "{b:?}:\n{text}");
        }
    }

    #[test]
    fn rejects_bad_fail_arguments() {
        let bad_code = Behaviour::Fail {
            code: CODE_CASES,
            message: "",
        };
        assert!(matches!(
            module_wat(bad_code),
            Err(BuildError::InvalidCode(17))
        ));
        let long: &'static str = Box::leak("x".repeat(MAX_MESSAGE_LEN + 1).into_boxed_str());
        let bad_len = Behaviour::Fail {
            code: 3,
            message: long,
        };
        assert!(matches!(
            module_wat(bad_len),
            Err(BuildError::MessageTooLong(_))
        ));
    }
}
