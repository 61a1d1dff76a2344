//! The append-only, bounded event log.

use std::ops::Bound;

use redb::ReadableTable;
use vimana_api::{Event, EventKind, WorkloadName, WorkloadState};

use crate::StoreError;
use crate::tables::{EVENT_SEQ, next_counter};

/// The default bound of the event log: the store keeps at most this many of
/// the newest events and deletes the oldest ones, in the same transaction
/// that appends a new one. Sequence numbers are never reused, so a reader
/// that fell behind sees a gap (the first returned `seq` is larger than
/// `since + 1`) rather than wrong events.
pub const MAX_EVENTS: u64 = 100_000;

/// An event to append; the store assigns `seq`, `time` and `workload`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: EventKind,
    /// The state after the event, where it changed one.
    pub state: Option<WorkloadState>,
    pub message: String,
}

impl NewEvent {
    /// Shorthand for building an event.
    pub fn new(kind: EventKind, state: Option<WorkloadState>, message: impl Into<String>) -> Self {
        Self {
            kind,
            state,
            message: message.into(),
        }
    }
}

fn event_what(seq: u64) -> String {
    format!("events[{seq}]")
}

pub(crate) fn decode_event(seq: u64, bytes: &[u8]) -> Result<Event, StoreError> {
    let event: Event = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: event_what(seq),
        detail: e.to_string(),
    })?;
    if event.seq != seq {
        return Err(StoreError::Corrupt {
            what: event_what(seq),
            detail: format!("the event carries seq {}", event.seq),
        });
    }
    Ok(event)
}

/// Appends an event with the next sequence number and trims the log to
/// `max_events`, inside the caller's write transaction.
pub(crate) fn append(
    events: &mut redb::Table<'_, u64, &'static [u8]>,
    counters: &mut redb::Table<'_, &'static str, u64>,
    max_events: u64,
    workload: &WorkloadName,
    time: &str,
    new: NewEvent,
) -> Result<Event, StoreError> {
    let seq = next_counter(counters, EVENT_SEQ)?;
    let event = Event {
        seq,
        time: time.to_string(),
        workload: workload.clone(),
        kind: new.kind,
        state: new.state,
        message: new.message,
    };
    let bytes = serde_json::to_vec(&event).map_err(|source| StoreError::Encode {
        what: event_what(seq),
        source,
    })?;
    events.insert(seq, bytes.as_slice())?;

    // Sequence numbers are handed out one by one and only the oldest are
    // deleted, so the events kept are exactly those in (seq - max, seq].
    let cutoff = seq.saturating_sub(max_events.max(1));
    loop {
        let first = match events.first()? {
            Some((k, _)) => k.value(),
            None => break,
        };
        if first > cutoff {
            break;
        }
        events.remove(first)?;
    }
    Ok(event)
}

/// Events with `seq > since` (all if `None`), of `workload` if given, oldest
/// first, at most `limit`.
pub(crate) fn query(
    events: &impl ReadableTable<u64, &'static [u8]>,
    since: Option<u64>,
    workload: Option<&WorkloadName>,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let start = since.map_or(Bound::Unbounded, Bound::Excluded);
    for item in events.range::<u64>((start, Bound::Unbounded))? {
        let (seq, bytes) = item?;
        let event = decode_event(seq.value(), bytes.value())?;
        if workload.is_some_and(|w| *w != event.workload) {
            continue;
        }
        out.push(event);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}
