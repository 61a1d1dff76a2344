//! In-flight decode memory: a request's component values may take up to
//! [`vimana_grpc::decode_bound`] of its message size (the codec refuses
//! more), so before a backend decodes, that much is reserved from the
//! connection's and the gateway's budgets. A request that does not fit is
//! answered RESOURCE_EXHAUSTED at once.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vimana_grpc::Status;

use crate::gateway::Inner;

/// A budget of bytes, counted in KiB.
#[derive(Debug)]
pub(crate) struct Budget {
    sem: Arc<Semaphore>,
    kib: u32,
    what: &'static str,
    key: &'static str,
}

impl Budget {
    pub(crate) fn new(bytes: usize, what: &'static str, key: &'static str) -> Budget {
        let kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX >> 4);
        Budget {
            sem: Arc::new(Semaphore::new(kib as usize)),
            kib,
            what,
            key,
        }
    }

    fn take(&self, kib: u32) -> Result<OwnedSemaphorePermit, Status> {
        if kib > self.kib {
            return Err(Status::resource_exhausted(format!(
                "decoding this request may take {} MiB, more than the {} MiB {} allows; \
                 send smaller messages or raise {}",
                kib.div_ceil(1024),
                self.kib / 1024,
                self.what,
                self.key
            )));
        }
        Arc::clone(&self.sem)
            .try_acquire_many_owned(kib)
            .map_err(|_| {
                Status::resource_exhausted(format!(
                    "{} has no room to decode this request ({} MiB needed, {} of {} MiB free); \
                     retry later or raise {}",
                    self.what,
                    kib.div_ceil(1024),
                    self.sem.available_permits() / 1024,
                    self.kib / 1024,
                    self.key
                ))
            })
    }
}

/// The budget of one connection, carried in its requests' extensions.
#[derive(Debug, Clone)]
pub(crate) struct ConnBudget(pub(crate) Arc<Budget>);

impl ConnBudget {
    pub(crate) fn new(bytes: usize) -> ConnBudget {
        ConnBudget(Arc::new(Budget::new(
            bytes,
            "one connection's in-flight decode memory",
            "[gateway] decode_memory_per_connection",
        )))
    }
}

/// Decode memory held while a request is in the backend.
#[derive(Debug)]
pub(crate) struct Lease {
    _total: OwnedSemaphorePermit,
    _conn: Option<OwnedSemaphorePermit>,
}

/// Reserves what decoding a message of `wire_len` bytes may take (its
/// values and the message itself).
pub(crate) fn reserve(
    inner: &Inner,
    conn: Option<&ConnBudget>,
    wire_len: usize,
) -> Result<Lease, Status> {
    let bytes = vimana_grpc::decode_bound(wire_len).saturating_add(wire_len);
    let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
    let conn = conn.map(|c| c.0.take(kib)).transpose()?;
    let total = inner.decode.take(kib)?;
    Ok(Lease {
        _total: total,
        _conn: conn,
    })
}
