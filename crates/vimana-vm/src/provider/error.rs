//! Errors of the provider seam. Each names the thing (socket, binary,
//! process, API path), what went wrong and, where there is one, the fix.

use std::path::PathBuf;
use std::time::Duration;

use crate::model::Provider;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The spec asks for something the provider cannot do.
    #[error("{provider} does not support {what}; {fix}")]
    Unsupported {
        provider: Provider,
        what: String,
        fix: String,
    },

    /// The spec cannot be expressed (e.g. a non-UTF-8 path).
    #[error("{message}")]
    InvalidSpec { message: String },

    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot remove stale socket {}: {source}", path.display())]
    RemoveStale {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot open {} for the output of {process}: {source}", path.display())]
    OpenOutput {
        process: String,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot start {process} ({binary}): {source}")]
    Spawn {
        process: String,
        binary: String,
        source: std::io::Error,
    },

    #[error("{process} (pid {pid}) {status} before {} appeared{}", socket.display(), tail_note(stderr_tail))]
    ExitedEarly {
        process: String,
        pid: u32,
        status: String,
        socket: PathBuf,
        stderr_tail: String,
    },

    #[error("{process} (pid {pid}) did not create {} within {waited:?}", socket.display())]
    SocketTimeout {
        process: String,
        pid: u32,
        socket: PathBuf,
        waited: Duration,
    },

    #[error("cannot connect to {}: {source}", socket.display())]
    Connect {
        socket: PathBuf,
        source: std::io::Error,
    },

    #[error("i/o on {} failed: {source}", socket.display())]
    Io {
        socket: PathBuf,
        source: std::io::Error,
    },

    #[error("{} did not answer {what} within {waited:?}", socket.display())]
    Timeout {
        socket: PathBuf,
        what: String,
        waited: Duration,
    },

    /// The peer broke the protocol (bad JSON, unexpected message, EOF).
    #[error("{}: {message}", socket.display())]
    Protocol { socket: PathBuf, message: String },

    /// QMP answered a command with an error.
    #[error("QMP {command} on {} failed: {class}: {desc}", socket.display())]
    Qmp {
        socket: PathBuf,
        command: String,
        class: String,
        desc: String,
    },

    /// A VMM API call failed at the HTTP level.
    #[error("{method} {path} on {} failed: {message}", socket.display())]
    Http {
        socket: PathBuf,
        method: String,
        path: String,
        message: String,
    },

    /// A VMM API call was answered with an error status.
    #[error("{method} {path} on {} answered {status}: {body}", socket.display())]
    Api {
        socket: PathBuf,
        method: String,
        path: String,
        status: u16,
        body: String,
    },
}

fn tail_note(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; its last output:\n{}", tail.trim_end())
    }
}
