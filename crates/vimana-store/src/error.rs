//! The store's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the store.
///
/// Every message names the file or the key involved and, where there is one,
/// what the operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open store {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    /// Another process (normally another daemon) holds the database open.
    #[error("another vimana daemon is using {path}; stop it first, or point VIMANA_HOME elsewhere")]
    AlreadyOpen { path: PathBuf },
    /// The database, or one of its records, was written by a newer build.
    #[error(
        "store {path} was written by a newer vimana (schema {found}, this build knows up to {known}); upgrade vimana or point VIMANA_HOME elsewhere"
    )]
    NewerSchema {
        path: PathBuf,
        /// The schema version found.
        found: u32,
        /// The newest schema version this build understands.
        known: u32,
        /// Where it was found: `meta schema_version` or `workload "<name>"`.
        location: String,
    },
    /// A stored value does not decode; `what` names the table and key.
    #[error(
        "store value {what} is corrupt: {detail}; restore state.redb from a backup or move it away"
    )]
    Corrupt { what: String, detail: String },
    /// A value could not be encoded for storage.
    #[error("cannot encode {what} for the store: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// An `update` closure returned a record for another workload.
    #[error(
        "update of workload {expected:?} returned a record named {found:?}; renaming is not supported"
    )]
    NameMismatch { expected: String, found: String },
    /// Any other error of the underlying redb database.
    #[error("store database error: {0}")]
    Db(#[from] redb::Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(redb::Error::from(e))
            }
        }
    )*};
}

from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
