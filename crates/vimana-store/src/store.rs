//! [`Store`]: the database handle and its operations.

use std::path::{Path, PathBuf};

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, WriteTransaction,
};
use vimana_api::{Event, WorkloadName};

use crate::events::{self, MAX_EVENTS, NewEvent};
use crate::record::{Record, SCHEMA_VERSION, decode_record, encode_record};
use crate::tables::{
    COUNTERS, EVENT_SEQ, EVENTS, META, RESOURCE_EVENT_SEQ, REVISION, SCHEMA_VERSION_KEY, WORKLOADS,
    next_counter, read_counter,
};
use crate::{StoreError, now_rfc3339};

/// Page cache of the database. The store is small (records plus a bounded
/// event log), so redb's default of 1 GiB is far more than it needs.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The embedded database at `VIMANA_HOME/state.redb`.
///
/// All operations are synchronous and short; async callers may run them in
/// `spawn_blocking`. `Store` is `Send + Sync`: share it behind an `Arc`.
/// Write operations are serialized by redb (one write transaction at a time)
/// and each commits with [`Durability::Immediate`], so once a call returns
/// `Ok` its effect survives a crash or `kill -9` of the process.
pub struct Store {
    pub(crate) db: Database,
    pub(crate) path: PathBuf,
    pub(crate) max_events: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("max_events", &self.max_events)
            .finish_non_exhaustive()
    }
}

/// The tables a write operation touches, opened once per transaction.
struct WriteTables<'txn> {
    workloads: redb::Table<'txn, &'static str, &'static [u8]>,
    events: redb::Table<'txn, u64, &'static [u8]>,
    counters: redb::Table<'txn, &'static str, u64>,
}

impl<'txn> WriteTables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            workloads: txn.open_table(WORKLOADS)?,
            events: txn.open_table(EVENTS)?,
            counters: txn.open_table(COUNTERS)?,
        })
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    ///
    /// On a fresh database it records [`SCHEMA_VERSION`]. It refuses a
    /// database whose `meta` schema, or any of whose records, is newer than
    /// this build ([`StoreError::NewerSchema`]), a record that does not
    /// decode ([`StoreError::Corrupt`]), and a database another process has
    /// open ([`StoreError::AlreadyOpen`]). Opening verifies the page
    /// checksums of the whole file (the store is small), so a damaged file is
    /// reported as an error rather than trusted.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(|source| match source {
                DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
                    path: path.to_path_buf(),
                },
                source => StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                },
            })?;
        let store = Store {
            db,
            path: path.to_path_buf(),
            max_events: MAX_EVENTS,
        };
        store.check_and_init()?;
        Ok(store)
    }

    /// Keeps at most `max_events` (at least 1) events from the next append
    /// on, instead of [`MAX_EVENTS`].
    pub fn with_event_limit(mut self, max_events: u64) -> Self {
        self.max_events = max_events.max(1);
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Validates the schema and every record, creates missing tables and
    /// meta, and makes sure the counters are ahead of the stored data.
    fn check_and_init(&self) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let stored = meta.get(SCHEMA_VERSION_KEY)?.map(|v| v.value());
            match stored {
                None => {
                    meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
                }
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::NewerSchema {
                        path: self.path.clone(),
                        found,
                        known: SCHEMA_VERSION,
                        location: "meta schema_version".to_string(),
                    });
                }
                Some(0) => {
                    return Err(StoreError::Corrupt {
                        what: format!("meta[{SCHEMA_VERSION_KEY:?}]"),
                        detail: "schema version 0 does not exist".to_string(),
                    });
                }
                Some(_) => {}
            }

            let mut tables = WriteTables::open(&txn)?;
            let mut max_revision = 0;
            let mut count = 0usize;
            for item in tables.workloads.iter()? {
                let (key, bytes) = item?;
                let record = decode_record(&self.path, key.value(), bytes.value())?;
                max_revision = max_revision.max(record.workload.revision);
                count += 1;
            }
            let last_seq = tables.events.last()?.map_or(0, |(k, _)| k.value());
            let resources = crate::resources::check_all(&txn, &self.path)?;
            max_revision = max_revision.max(resources.max_revision);

            // Writes are transactional, so this holds unless the file was
            // edited; repairing is cheap and keeps revisions unique.
            for (key, floor) in [
                (REVISION, max_revision),
                (EVENT_SEQ, last_seq),
                (RESOURCE_EVENT_SEQ, resources.last_event_seq),
            ] {
                let current = read_counter(&tables.counters, key)?;
                if current < floor {
                    tracing::warn!(
                        store = %self.path.display(),
                        counter = key,
                        current,
                        floor,
                        "store counter is behind the stored data; moving it forward"
                    );
                    tables.counters.insert(key, floor)?;
                }
            }
            tracing::debug!(
                store = %self.path.display(),
                workloads = count,
                resources = resources.count,
                "store opened"
            );
        }
        txn.commit()?;
        Ok(())
    }

    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write()?;
        // The default, stated explicitly: an acknowledged write survives kill -9.
        txn.set_durability(Durability::Immediate)?;
        Ok(txn)
    }

    /// The record of `name`, if any.
    pub fn get(&self, name: &WorkloadName) -> Result<Option<Record>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WORKLOADS)?;
        match table.get(name.as_str())? {
            Some(bytes) => Ok(Some(decode_record(
                &self.path,
                name.as_str(),
                bytes.value(),
            )?)),
            None => Ok(None),
        }
    }

    /// All records, sorted by name.
    pub fn list(&self) -> Result<Vec<Record>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WORKLOADS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (key, bytes) = item?;
            out.push(decode_record(&self.path, key.value(), bytes.value())?);
        }
        Ok(out)
    }

    /// Stores `record` under its workload's name in one durable write
    /// transaction, and appends `event` if given.
    ///
    /// The store sets `schema` to [`SCHEMA_VERSION`], `workload.revision` to
    /// the next global revision (strictly increasing across all records and
    /// never reused, even after a removal), `workload.updated_at` to now, and
    /// `workload.created_at` to now if it is empty. Returns the record as
    /// stored and the appended event.
    pub fn put(
        &self,
        record: Record,
        event: Option<NewEvent>,
    ) -> Result<(Record, Option<Event>), StoreError> {
        let txn = self.begin_write()?;
        let out = {
            let mut tables = WriteTables::open(&txn)?;
            self.write_record(&mut tables, record, event)?
        };
        txn.commit()?;
        Ok(out)
    }

    /// Read-modify-write of one record in one durable write transaction.
    ///
    /// `f` gets the current record (`None` if absent) and returns the new
    /// record and an optional event, or `None` to change nothing (then
    /// nothing is written and `Ok(None)` is returned). The returned record
    /// must keep the name. Revision and event semantics are those of
    /// [`Store::put`]. `f` runs while the write transaction is open: keep it
    /// short and do not call the store from it (that would deadlock).
    pub fn update(
        &self,
        name: &WorkloadName,
        f: impl FnOnce(Option<Record>) -> Option<(Record, Option<NewEvent>)>,
    ) -> Result<Option<(Record, Option<Event>)>, StoreError> {
        let txn = self.begin_write()?;
        let out = {
            let mut tables = WriteTables::open(&txn)?;
            let current = match tables.workloads.get(name.as_str())? {
                Some(bytes) => Some(decode_record(&self.path, name.as_str(), bytes.value())?),
                None => None,
            };
            match f(current) {
                None => None,
                Some((record, _)) if record.workload.name != *name => {
                    return Err(StoreError::NameMismatch {
                        expected: name.to_string(),
                        found: record.workload.name.to_string(),
                    });
                }
                Some((record, event)) => Some(self.write_record(&mut tables, record, event)?),
            }
        };
        match out {
            Some(_) => txn.commit()?,
            None => txn.abort()?,
        }
        Ok(out)
    }

    /// Removes the record of `name` in one durable write transaction and
    /// appends `event` (normally of kind [`vimana_api::EventKind::Removed`]).
    ///
    /// A removal consumes a revision too, so a record put again later gets a
    /// revision larger than any it had. Returns `None`, and writes nothing,
    /// if there is no such record.
    pub fn remove(
        &self,
        name: &WorkloadName,
        event: NewEvent,
    ) -> Result<Option<Event>, StoreError> {
        let txn = self.begin_write()?;
        let out = {
            let mut tables = WriteTables::open(&txn)?;
            if tables.workloads.remove(name.as_str())?.is_none() {
                None
            } else {
                next_counter(&mut tables.counters, REVISION)?;
                Some(events::append(
                    &mut tables.events,
                    &mut tables.counters,
                    self.max_events,
                    name,
                    &now_rfc3339(),
                    event,
                )?)
            }
        };
        match out {
            Some(_) => txn.commit()?,
            None => txn.abort()?,
        }
        Ok(out)
    }

    /// Events with `seq > since` (all kept events if `None`), only those of
    /// `workload` if given, oldest first, at most `limit` (0 returns none).
    ///
    /// The log keeps only the newest events (see [`MAX_EVENTS`]); a caller
    /// whose `since` is older than the oldest kept event sees a gap in `seq`.
    pub fn events(
        &self,
        since: Option<u64>,
        workload: Option<&WorkloadName>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        events::query(&table, since, workload, limit)
    }

    /// The sequence number of the last event appended (0 if none ever was).
    pub fn last_event_seq(&self) -> Result<u64, StoreError> {
        self.read_counter(EVENT_SEQ)
    }

    /// The last revision handed out (0 if none ever was); every stored
    /// record's revision is at most this.
    pub fn current_revision(&self) -> Result<u64, StoreError> {
        self.read_counter(REVISION)
    }

    fn read_counter(&self, key: &str) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(COUNTERS)?;
        read_counter(&table, key)
    }

    /// The body of `put` and `update`, inside the caller's transaction.
    fn write_record(
        &self,
        tables: &mut WriteTables<'_>,
        mut record: Record,
        event: Option<NewEvent>,
    ) -> Result<(Record, Option<Event>), StoreError> {
        let now = now_rfc3339();
        record.schema = SCHEMA_VERSION;
        record.workload.revision = next_counter(&mut tables.counters, REVISION)?;
        if record.workload.created_at.is_empty() {
            record.workload.created_at.clone_from(&now);
        }
        record.workload.updated_at.clone_from(&now);
        let bytes = encode_record(&record)?;
        tables
            .workloads
            .insert(record.workload.name.as_str(), bytes.as_slice())?;
        let event = match event {
            Some(new) => Some(events::append(
                &mut tables.events,
                &mut tables.counters,
                self.max_events,
                &record.workload.name,
                &now,
                new,
            )?),
            None => None,
        };
        Ok((record, event))
    }
}
