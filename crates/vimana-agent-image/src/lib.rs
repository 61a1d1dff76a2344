//! The static guest agent embedded at build time (see `build.rs`), or
//! `None` when it was not built (`VIMANA_EMBED_AGENT=0`, or the build
//! failed with a warning).

/// The bytes of the static `vimana-agent`.
#[cfg(embedded_agent)]
pub const AGENT: Option<&[u8]> = Some(include_bytes!(env!("VIMANA_EMBEDDED_AGENT")));

/// The bytes of the static `vimana-agent`.
#[cfg(not(embedded_agent))]
pub const AGENT: Option<&[u8]> = None;
