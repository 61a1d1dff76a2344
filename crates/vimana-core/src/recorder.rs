//! [`HandleRecorder`]: a driver stores the adoption handle of a workload it
//! is still launching, so a daemon killed during the slow part of a launch
//! (a plugin's handshake or `Start`, a VM's boot) leaves a record the next
//! daemon adopts or kills instead of launching a second copy.

use std::sync::Arc;

use vimana_api::WorkloadName;

use crate::DriverError;
use crate::inner::Inner;

/// Stores a handle with the workload's record (one durable transaction).
/// The default recorder (driver tests without a core) stores nothing.
#[derive(Clone, Default)]
pub struct HandleRecorder {
    to: Option<(Arc<Inner>, WorkloadName)>,
}

impl HandleRecorder {
    pub(crate) fn new(inner: Arc<Inner>, name: WorkloadName) -> Self {
        Self {
            to: Some((inner, name)),
        }
    }

    /// Records `handle` and `pid` for the workload being launched; returns
    /// once it is durable. The next daemon hands this handle to
    /// [`crate::Driver::run`] as `ctx.adopt`.
    pub async fn record(
        &self,
        handle: serde_json::Value,
        pid: Option<u32>,
    ) -> Result<(), DriverError> {
        let Some((inner, name)) = &self.to else {
            return Ok(());
        };
        inner
            .update_record(name, None, String::new(), move |r| {
                r.handle = Some(handle);
                r.workload.pid = pid;
            })
            .await
            .map_err(|e| {
                DriverError::new(format!(
                    "cannot record the launch of \"{name}\" in the store: {e}"
                ))
            })
    }
}
