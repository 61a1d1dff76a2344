//! Spacecores: plugin processes that control one workload through four
//! calls of `proto.ScPlugin` over HashiCorp go-plugin's gRPC protocol.
//!
//! - [`proto`]: the generated protocol (wire-compatible with Go spacecores).
//! - [`Spacecore`] and [`serve`]: the Rust SDK for writing a spacecore.
//! - [`SpacecoreDriver`]: the daemon's driver that supervises spacecores.
//! - [`call`]: one-shot calls, as `vimana plugin <PATH> <call>` makes them.

mod call;
mod deadline;
mod driver;
mod instance;
mod pump;
mod sdk;

pub use call::{Call, CallError, CallOutput, call_once};
pub use deadline::Deadlines;
pub use driver::{SpacecoreDriver, check_plugin_path};
pub use sdk::{Spacecore, SpacecoreError, serve};

/// Generated `proto.ScPlugin` messages, client and server.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("proto");
}

/// The go-plugin handshake every spacecore uses: cookie
/// `SPACECORE_PLUGIN=v1`, app protocol version 1.
pub fn handshake() -> vimana_goplugin::HandshakeConfig {
    vimana_goplugin::HandshakeConfig {
        cookie_key: "SPACECORE_PLUGIN".into(),
        cookie_value: "v1".into(),
        app_versions: vec![1],
    }
}

/// Whether a Status answer says the workload runs.
pub fn status_is_running(status: &str) -> bool {
    let s = status.trim().to_ascii_lowercase();
    s.contains("running") || s == "started" || s == "ok" || s == "healthy"
}
