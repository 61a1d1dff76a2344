//! `GET /v1/events`: the event log as ndjson, optionally followed.

use std::future::ready;

use axum::extract::State;
use axum::response::Response;
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use vimana_api::{Action, ActionOutcome, Event, WorkloadName};

use crate::extract::ApiQuery;
use crate::logs::{live, ndjson_response};
use crate::problem::ApiProblem;
use crate::workloads::unexpected;
use crate::{AppState, paths};

/// Query of `GET /v1/events`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with a sequence number greater than this.
    pub since: Option<u64>,
    /// Only events of this workload.
    #[param(value_type = Option<String>)]
    pub workload: Option<WorkloadName>,
    /// Keep streaming new events (default false).
    #[serde(default)]
    pub follow: bool,
}

/// `GET /v1/events?since=N&workload=NAME` (following is not an action: the
/// handler subscribes separately).
pub fn parse_get_events(query: &EventsQuery) -> Action {
    Action::Events {
        since: query.since,
        workload: query.workload.clone(),
    }
}

#[utoipa::path(
    get,
    path = paths::EVENTS,
    tag = "events",
    operation_id = "events",
    summary = "The event log as ndjson, optionally followed",
    description = "One Event JSON document per line, oldest first: the stored events after \
        `since`, then, with `follow=true`, new events as they happen until the client \
        disconnects.",
    params(EventsQuery),
    responses(
        (status = 200, description = "One Event per line", body = Event, content_type = "application/x-ndjson"),
        (status = 400, description = "Invalid query", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiProblem> {
    // Subscribe before taking the snapshot so no event falls in between.
    let subscription = query.follow.then(|| state.core.subscribe_events());
    let events = match state.core.handle(parse_get_events(&query)).await? {
        ActionOutcome::Events(events) => events,
        other => return Err(unexpected("Events", &other).into()),
    };
    let last_in_snapshot = events.iter().map(|e| e.seq).max();
    let snapshot = stream::iter(events);
    let items = match subscription {
        None => snapshot.boxed(),
        Some(rx) => {
            let mut last_sent = last_in_snapshot.max(query.since);
            let workload = query.workload;
            let fresh = live(rx).filter_map(move |event: Event| {
                let wanted = workload.as_ref().is_none_or(|w| *w == event.workload)
                    && last_sent.is_none_or(|last| event.seq > last);
                if wanted {
                    last_sent = Some(event.seq);
                }
                ready(wanted.then_some(event))
            });
            snapshot.chain(fresh).boxed()
        }
    };
    Ok(ndjson_response(items, state.shutdown))
}
