//! Output capture for supervised processes.
//!
//! - [`tail::TailFollower`]: follows a growing file line by line.
//! - [`RawFiles`] and the log pump: a workload writes stdout/stderr to plain
//!   files opened `O_APPEND` (it never sees a broken pipe, and keeps running
//!   when the daemon dies); the pump copies each file, line by line, into a
//!   [`LineSink`] and remembers how far it got in a `<file>.pos` side file,
//!   so the next daemon continues where this one stopped.

mod pump;
pub mod tail;

pub use pump::{
    Classified, Classifier, LineSink, POLL, PumpOptions, RAW_MAX, RawFiles, drain, spawn_pump,
};
