//! `GET /v1/system`: what daemon answers.

use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::paths;

/// Version of the daemon and of the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SystemInfo {
    /// Version of the daemon.
    pub version: String,
    /// API level, the path prefix without its slash (`v1`).
    pub api: String,
}

impl SystemInfo {
    /// This daemon's answer.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            api: vimana_api::API_PREFIX.trim_start_matches('/').to_string(),
        }
    }
}

#[utoipa::path(
    get,
    path = paths::SYSTEM,
    tag = "system",
    operation_id = "system",
    summary = "Daemon version and API level",
    responses((status = 200, description = "Version information", body = SystemInfo))
)]
pub(crate) async fn get_system() -> Json<SystemInfo> {
    Json(SystemInfo::current())
}
