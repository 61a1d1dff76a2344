//! `GET /v1/workloads/{name}/logs`: a snapshot of the merged log, then
//! (with `follow=true`) live records until the client goes away.

use std::convert::Infallible;
use std::future::ready;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use vimana_api::{Action, ActionOutcome, LogQuery, LogRecord, WorkloadName};

use crate::extract::{ApiPath, ApiQuery};
use crate::problem::ApiProblem;
use crate::workloads::unexpected;
use crate::{AppState, NDJSON, Shutdown, paths};

/// `GET /v1/workloads/{name}/logs?tail=N` (following is not an action: the
/// handler subscribes separately).
pub fn parse_get_logs(name: WorkloadName, query: &LogQuery) -> Action {
    Action::Logs {
        name,
        tail: query.tail,
    }
}

/// One ndjson line; a record that cannot be serialized is skipped.
pub(crate) fn ndjson_line<T: Serialize>(item: &T) -> Option<Bytes> {
    match serde_json::to_vec(item) {
        Ok(mut line) => {
            line.push(b'\n');
            Some(Bytes::from(line))
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not serialize a streamed item; skipping it");
            None
        }
    }
}

/// Live items of a broadcast receiver; a lagged receiver skips what it
/// missed and continues; the stream ends when the sender is gone.
pub(crate) fn live<T: Clone + Send + 'static>(rx: broadcast::Receiver<T>) -> BoxStream<'static, T> {
    BroadcastStream::new(rx)
        .filter_map(|item| {
            ready(match item {
                Ok(item) => Some(item),
                Err(e) => {
                    tracing::debug!(error = %e, "stream subscriber lagged; continuing");
                    None
                }
            })
        })
        .boxed()
}

/// An ndjson response of `items`, ended early on server shutdown.
pub(crate) fn ndjson_response<T: Serialize + Send + 'static>(
    items: BoxStream<'static, T>,
    shutdown: Shutdown,
) -> Response {
    let body = items
        .take_until(shutdown.wait())
        .filter_map(|item| ready(ndjson_line(&item)))
        .map(Ok::<_, Infallible>);
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(NDJSON)),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = paths::WORKLOAD_LOGS,
    tag = "logs",
    operation_id = "workload_logs",
    summary = "Log records of one workload as ndjson, optionally followed",
    description = "One LogRecord JSON document per line: the stored records (the last `tail` \
        of them), then, with `follow=true`, new records as they arrive until the client \
        disconnects.",
    params(
        ("name" = String, Path, pattern = "^[a-z][a-z0-9-]{0,62}$", description = "Workload name, ^[a-z][a-z0-9-]{0,62}$"),
        ("tail" = Option<usize>, Query, description = "Only the last N stored records"),
        ("follow" = Option<bool>, Query, description = "Keep streaming new records (default false)"),
    ),
    responses(
        (status = 200, description = "One LogRecord per line", body = LogRecord, content_type = "application/x-ndjson"),
        (status = 400, description = "Invalid name or query", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workload", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_workload_logs(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Response, ApiProblem> {
    let name = WorkloadName::new(name)?;
    // Subscribe before taking the snapshot so no record falls in between
    // (one may appear twice; that is accepted). A follower's channel costs
    // the core memory, so an absent workload is a 404 before subscribing.
    let subscription = if query.follow {
        state
            .core
            .handle(Action::Get { name: name.clone() })
            .await?;
        Some(state.core.subscribe_logs(&name)?)
    } else {
        None
    };
    let records = match state.core.handle(parse_get_logs(name, &query)).await? {
        ActionOutcome::Logs(records) => records,
        other => return Err(unexpected("Logs", &other).into()),
    };
    let snapshot = stream::iter(records);
    let items = match subscription {
        Some(rx) => snapshot.chain(live(rx)).boxed(),
        None => snapshot.boxed(),
    };
    Ok(ndjson_response(items, state.shutdown))
}
