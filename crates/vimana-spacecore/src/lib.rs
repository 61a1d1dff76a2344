//! Spacecore protocol (proto.ScPlugin), the Rust SDK, and the spacecore Driver.
