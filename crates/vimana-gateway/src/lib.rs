//! The gateway in front of Wasm component services.
