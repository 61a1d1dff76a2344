//! Text documents a user may get from someone else: `hac.toml`, the
//! resources YAML and a package index. Parsing them must end in a value or
//! in one located diagnostic that renders (its spans inside the source).

use std::path::{Path, PathBuf};

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};

/// Renders a diagnostic the way the CLI shows it (labels, source snippet).
fn render(diagnostic: &dyn Diagnostic) {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::none());
    let mut out = String::new();
    // A formatting error is a rendering bug only if it panics; the text is
    // not needed.
    let _ = handler.render_report(&mut out, diagnostic);
}

/// `hac.toml`, validated as for another machine (paths not checked).
pub fn hac(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let opts = vimana_vm::hac::ParseOptions {
        host_memory_mib: Some(4096),
        base_dir: Some(PathBuf::from("/vimana-fuzz")),
        check_paths: false,
    };
    match vimana_vm::hac::parse(&text, Path::new("hac.toml"), &opts) {
        Ok(parsed) => {
            for warning in &parsed.warnings {
                render(warning);
            }
        }
        Err(e) => render(&e),
    }
}

/// A resources file (multi-document YAML), applied to an empty set (the
/// cross-document rules); an applied set must survive the JSON the daemon
/// stores it as.
pub fn resources(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = match vimana_resources::parse_documents("resources.yaml", &text) {
        Ok(parsed) => parsed,
        Err(e) => return render(&e),
    };
    let mut set = vimana_resources::ResourceSet::new();
    if let Err(e) = set.apply(parsed) {
        return render(&e);
    }
    let json = set
        .to_json()
        .unwrap_or_else(|e| panic!("an applied set has no JSON: {e}"));
    if let Err(e) = vimana_resources::ResourceSet::from_json(&json) {
        panic!("the stored JSON of an applied set does not load: {e}\n{json}");
    }
}

/// A package repository's `index.toml`.
pub fn package_index(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = vimana_registry::index::parse("index.toml", &text) {
        render(e.as_ref());
    }
}
