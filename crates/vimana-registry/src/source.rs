//! Where an index or artifact comes from: an http(s) URL or a local file
//! (`file://` URL or a path).

use std::path::PathBuf;

use crate::error::{RegistryError, Result};

/// A parsed location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Http(url::Url),
    File(PathBuf),
}

impl Source {
    /// Parse `https://…`, `http://…`, `file://…` or a local path.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason: &str| RegistryError::BadUrl {
            url: s.to_string(),
            reason: reason.to_string(),
        };
        if s.trim().is_empty() {
            return Err(bad("empty"));
        }
        match url::Url::parse(s) {
            Ok(u) => match u.scheme() {
                "http" | "https" => Ok(Source::Http(u)),
                "file" => u
                    .to_file_path()
                    .map(Source::File)
                    .map_err(|()| bad("not a local file URL")),
                other => Err(bad(&format!("scheme {other:?} is not supported"))),
            },
            Err(url::ParseError::RelativeUrlWithoutBase) => Ok(Source::File(PathBuf::from(s))),
            Err(e) => Err(bad(&e.to_string())),
        }
    }
}

/// Turn a possibly relative artifact URL into an absolute one, relative to
/// the URL (or path) of the index that names it.
pub fn join(base: Option<&str>, reference: &str) -> Result<String> {
    if let Ok(u) = url::Url::parse(reference) {
        return Ok(u.to_string());
    }
    let bad = |reason: String| RegistryError::BadUrl {
        url: reference.to_string(),
        reason,
    };
    let Some(base) = base else {
        return Err(bad(
            "a relative URL needs a repository URL to resolve against".into(),
        ));
    };
    match Source::parse(base)? {
        Source::Http(u) => u
            .join(reference)
            .map(|u| u.to_string())
            .map_err(|e| bad(e.to_string())),
        Source::File(p) => {
            let dir = p.parent().map(PathBuf::from).unwrap_or_default();
            Ok(dir.join(reference).to_string_lossy().into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_joins() {
        assert!(matches!(
            Source::parse("https://x/i.toml"),
            Ok(Source::Http(_))
        ));
        assert_eq!(
            Source::parse("file:///tmp/i.toml").unwrap(),
            Source::File("/tmp/i.toml".into())
        );
        assert_eq!(
            Source::parse("./i.toml").unwrap(),
            Source::File("./i.toml".into())
        );
        assert!(Source::parse("ftp://x/y").is_err());
        assert_eq!(
            join(Some("http://h/r/index.toml"), "a/b.tgz").unwrap(),
            "http://h/r/a/b.tgz"
        );
        assert_eq!(
            join(Some("/srv/r/index.toml"), "b.tgz").unwrap(),
            "/srv/r/b.tgz"
        );
        assert_eq!(join(None, "https://h/x").unwrap(), "https://h/x");
        assert!(join(None, "x").is_err());
    }
}
