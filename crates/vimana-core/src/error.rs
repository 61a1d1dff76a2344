use vimana_api::ApiError;
use vimana_store::StoreError;

/// Errors of the core's own machinery (not of a workload).
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("log file {path}: {source}")]
    Log {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}
