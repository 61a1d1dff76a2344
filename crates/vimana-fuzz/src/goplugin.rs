//! One line a plugin prints: go-plugin's handshake line (stdout) and an
//! hclog line (stderr). Both come from a process vimana does not trust.

use std::path::Path;

use vimana_goplugin::{Handshake, parse_handshake_line, parse_hclog_line};

const OFFERED: &[u32] = &[1, 2, 3];

/// Parses `data` as a handshake line and as an hclog line; an accepted
/// handshake must come back unchanged from the line vimana would print.
pub fn goplugin_line(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    let path = Path::new("fuzz-plugin");
    let _ = parse_hclog_line(&line);
    let Ok(handshake) = parse_handshake_line(path, &line, OFFERED) else {
        return;
    };
    // `to_line` does not print go-plugin's optional mux field.
    let expected = Handshake {
        mux: false,
        ..handshake
    };
    let again = parse_handshake_line(path, &expected.to_line(), OFFERED)
        .unwrap_or_else(|e| panic!("the printed form of {expected:?} does not parse: {e}"));
    assert_eq!(
        again, expected,
        "handshake changed through its printed form"
    );
}
