//! REST API of the daemon: thin HTTP to [`Action`](vimana_api::Action)
//! translators, RFC 9457 problem details, OpenAPI.
//!
//! Every handler follows the same shape (Firecracker style): a
//! `parse_<verb>_<resource>` function turns the HTTP request into one
//! [`vimana_api::Action`], the handler hands it to [`CoreApi::handle`] and
//! renders the [`vimana_api::ActionOutcome`]. Errors are
//! `application/problem+json` bodies built from
//! [`vimana_api::ApiError::to_problem`].
//!
//! - [`router`] builds the [`axum::Router`] (optionally behind a bearer token);
//! - [`serve_unix`] serves it on a 0600 unix socket without a token;
//! - [`serve_tcp`] serves it on TCP, token required;
//! - [`openapi`] is the generated OpenAPI 3 document, also at `GET /openapi.json`.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter, on};
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use vimana_core::CoreApi;

mod auth;
mod error;
mod events;
mod extract;
mod logs;
mod openapi;
mod problem;
mod resources;
mod serve;
mod system;
mod workloads;

pub use error::ServerError;
pub use events::{EventsQuery, parse_get_events};
pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use logs::parse_get_logs;
pub use openapi::{ApiDoc, openapi};
pub use problem::{ApiProblem, PROBLEM_JSON};
pub use resources::{
    parse_apply_resources, parse_delete_resource, parse_delete_resources, parse_get_resources,
    parse_kind,
};
pub use serve::{
    serve_tcp, serve_tcp_listener, serve_tcp_listener_with, serve_tcp_with, serve_unix,
    serve_unix_with,
};
pub use system::SystemInfo;
pub use vimana_listen::ConnLimits;
pub use workloads::{
    parse_delete_workload, parse_get_workload, parse_list_workloads, parse_put_workload,
    parse_stop_workload,
};

/// Largest accepted request body, in bytes (1 MiB); larger is a 413 problem.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Media type of the streaming endpoints (one JSON document per line).
pub const NDJSON: &str = "application/x-ndjson";

/// The route paths, in axum / OpenAPI template syntax. The same constants
/// are used by the router and by the `#[utoipa::path]` annotations.
pub mod paths {
    /// `GET`: all workloads.
    pub const WORKLOADS: &str = "/v1/workloads";
    /// `GET`, `PUT`, `DELETE`: one workload.
    pub const WORKLOAD: &str = "/v1/workloads/{name}";
    /// `POST`: stop one workload.
    pub const WORKLOAD_STOP: &str = "/v1/workloads/{name}/stop";
    /// `GET`: logs of one workload (ndjson).
    pub const WORKLOAD_LOGS: &str = "/v1/workloads/{name}/logs";
    /// `POST`: apply resources; `GET`: every resource.
    pub const RESOURCES: &str = "/v1/resources";
    /// `POST`: delete several resources.
    pub const RESOURCES_DELETE: &str = "/v1/resources/delete";
    /// `GET`: resources of one kind.
    pub const RESOURCES_OF_KIND: &str = "/v1/resources/{kind}";
    /// `GET`, `DELETE`: one resource.
    pub const RESOURCE: &str = "/v1/resources/{kind}/{name}";
    /// `GET`: the event log (ndjson).
    pub const EVENTS: &str = "/v1/events";
    /// `GET`: daemon version and API level.
    pub const SYSTEM: &str = "/v1/system";
    /// `GET`: the OpenAPI document.
    pub const OPENAPI: &str = "/openapi.json";
}

/// HTTP methods the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Put,
    Post,
    Delete,
}

impl Verb {
    /// Lowercase name, as used for OpenAPI operations.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Put => "put",
            Verb::Post => "post",
            Verb::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Put => MethodFilter::PUT,
            Verb::Post => MethodFilter::POST,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) core: Arc<dyn CoreApi>,
    pub(crate) shutdown: Shutdown,
}

/// Resolves when the server shuts down, so streaming responses end and
/// graceful shutdown is not held up by a `follow` client.
#[derive(Clone, Debug)]
pub(crate) struct Shutdown(Option<watch::Receiver<bool>>);

impl Shutdown {
    pub(crate) fn never() -> Self {
        Self(None)
    }

    pub(crate) fn new(rx: watch::Receiver<bool>) -> Self {
        Self(Some(rx))
    }

    /// Completes once shutdown was signalled (or its sender is gone).
    pub(crate) async fn wait(self) {
        match self.0 {
            None => std::future::pending().await,
            Some(mut rx) => {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        }
    }
}

struct RouteDef {
    verb: Verb,
    path: &'static str,
    handler: MethodRouter<AppState>,
}

fn def<H, T>(verb: Verb, path: &'static str, handler: H) -> RouteDef
where
    H: Handler<T, AppState>,
    T: 'static,
{
    RouteDef {
        verb,
        path,
        handler: on(verb.filter(), handler),
    }
}

/// The one list of routes: [`router`] registers exactly these, and
/// [`routes`] reports them (the OpenAPI coverage test compares it with the
/// document).
fn route_table() -> Vec<RouteDef> {
    use paths::*;
    vec![
        def(Verb::Get, WORKLOADS, workloads::list_workloads),
        def(Verb::Get, WORKLOAD, workloads::get_workload),
        def(Verb::Put, WORKLOAD, workloads::put_workload),
        def(Verb::Delete, WORKLOAD, workloads::delete_workload),
        def(Verb::Post, WORKLOAD_STOP, workloads::stop_workload),
        def(Verb::Get, WORKLOAD_LOGS, logs::get_workload_logs),
        def(Verb::Post, RESOURCES, resources::apply_resources),
        def(Verb::Get, RESOURCES, resources::list_all_resources),
        def(Verb::Post, RESOURCES_DELETE, resources::delete_resources),
        def(Verb::Get, RESOURCES_OF_KIND, resources::list_resources),
        def(Verb::Get, RESOURCE, resources::get_resource),
        def(Verb::Delete, RESOURCE, resources::delete_resource),
        def(Verb::Get, EVENTS, events::get_events),
        def(Verb::Get, SYSTEM, system::get_system),
        def(Verb::Get, OPENAPI, openapi::get_openapi),
    ]
}

/// Every (method, path) the router serves.
pub fn routes() -> Vec<(Verb, &'static str)> {
    route_table()
        .into_iter()
        .map(|r| (r.verb, r.path))
        .collect()
}

/// The REST API. With `token` set, every request (including unknown routes)
/// must carry `Authorization: Bearer <token>`, else it gets a 401 problem.
pub fn router(core: Arc<dyn CoreApi>, token: Option<String>) -> Router {
    build_router(core, token, Shutdown::never())
}

pub(crate) fn build_router(
    core: Arc<dyn CoreApi>,
    token: Option<String>,
    shutdown: Shutdown,
) -> Router {
    let mut app = Router::new();
    for route in route_table() {
        app = app.route(route.path, route.handler);
    }
    let app = app
        .fallback(problem::route_not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    let app = match token {
        Some(token) => app.layer(axum::middleware::from_fn_with_state(
            auth::BearerToken::new(token),
            auth::require_bearer,
        )),
        None => app,
    };
    app.layer(axum::middleware::from_fn(problem::ensure_problem))
        .layer(CatchPanicLayer::custom(problem::panic_response))
        .with_state(AppState { core, shutdown })
}
