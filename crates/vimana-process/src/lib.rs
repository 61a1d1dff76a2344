//! The `process` workload kind: a plain executable supervised by the daemon.
//!
//! - [`ProcessDriver`] launches the process in its own session with
//!   stdin on `/dev/null` and stdout/stderr appended to raw files (so it
//!   never gets SIGPIPE and outlives the daemon), pumps those files into the
//!   merged log, and re-adopts it after a daemon restart by pid + `/proc`
//!   start time.
//! - [`cgroup`]: CPU and memory limits through cgroup v2 behind the small
//!   [`CgroupFs`] trait; where the host has no writable cgroup v2 the
//!   process runs unlimited and the workload log says so once.

pub mod cgroup;
mod driver;
mod instance;

pub use cgroup::{CgroupError, CgroupFs, Limits, MemCgroupFs, RealCgroupFs};
pub use driver::{Handle, ProcessDriver, check_spec};
