#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod host;
pub mod plugin;
