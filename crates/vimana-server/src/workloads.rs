//! `/v1/workloads`: list, get, register-and-start, stop, remove.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use vimana_api::{Action, ActionOutcome, ApiError, StartRequest, Workload, WorkloadName};

use crate::AppState;
use crate::extract::{ApiJson, ApiPath};
use crate::paths;
use crate::problem::ApiProblem;

/// `GET /v1/workloads`.
pub fn parse_list_workloads() -> Action {
    Action::List
}

/// `GET /v1/workloads/{name}`.
pub fn parse_get_workload(name: &str) -> Result<Action, ApiError> {
    Ok(Action::Get {
        name: WorkloadName::new(name)?,
    })
}

/// `PUT /v1/workloads/{name}`; no body means "start the existing workload".
pub fn parse_put_workload(name: &str, body: Option<StartRequest>) -> Result<Action, ApiError> {
    Ok(Action::Start {
        name: WorkloadName::new(name)?,
        spec: body.and_then(|b| b.spec),
    })
}

/// `POST /v1/workloads/{name}/stop`.
pub fn parse_stop_workload(name: &str) -> Result<Action, ApiError> {
    Ok(Action::Stop {
        name: WorkloadName::new(name)?,
    })
}

/// `DELETE /v1/workloads/{name}`.
pub fn parse_delete_workload(name: &str) -> Result<Action, ApiError> {
    Ok(Action::Remove {
        name: WorkloadName::new(name)?,
    })
}

/// The core answered an action with an outcome of the wrong kind.
pub(crate) fn unexpected(action: &str, outcome: &ActionOutcome) -> ApiError {
    let got = match outcome {
        ActionOutcome::Workload(_) => "a workload",
        ActionOutcome::Workloads(_) => "a workload list",
        ActionOutcome::Removed => "removed",
        ActionOutcome::Logs(_) => "log records",
        ActionOutcome::Events(_) => "events",
        ActionOutcome::ResourceChanges(_) => "resource changes",
        ActionOutcome::Resources(_) => "resources",
    };
    ApiError::Internal(format!("the core answered {action} with {got}"))
}

/// The action's variant name, for error messages (never its payload, which
/// may carry a spec's environment).
fn action_kind(action: &Action) -> &'static str {
    match action {
        Action::Start { .. } => "Start",
        Action::Stop { .. } => "Stop",
        Action::Remove { .. } => "Remove",
        Action::Get { .. } => "Get",
        Action::List => "List",
        Action::Logs { .. } => "Logs",
        Action::Events { .. } => "Events",
        Action::ApplyResources { .. } => "ApplyResources",
        Action::GetResources { .. } => "GetResources",
        Action::DeleteResources { .. } => "DeleteResources",
    }
}

async fn one_workload(state: &AppState, action: Action) -> Result<Json<Workload>, ApiProblem> {
    let kind = action_kind(&action);
    match state.core.handle(action).await? {
        ActionOutcome::Workload(w) => Ok(Json(*w)),
        other => Err(unexpected(kind, &other).into()),
    }
}

#[utoipa::path(
    get,
    path = paths::WORKLOADS,
    tag = "workloads",
    operation_id = "list_workloads",
    summary = "List all workloads, sorted by name",
    responses(
        (status = 200, description = "All workloads", body = [Workload]),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_workloads(
    State(state): State<AppState>,
) -> Result<Json<Vec<Workload>>, ApiProblem> {
    match state.core.handle(parse_list_workloads()).await? {
        ActionOutcome::Workloads(list) => Ok(Json(list)),
        other => Err(unexpected("List", &other).into()),
    }
}

#[utoipa::path(
    get,
    path = paths::WORKLOAD,
    tag = "workloads",
    operation_id = "get_workload",
    summary = "One workload",
    params(("name" = String, Path, pattern = "^[a-z][a-z0-9-]{0,62}$", description = "Workload name, ^[a-z][a-z0-9-]{0,62}$")),
    responses(
        (status = 200, description = "The workload", body = Workload),
        (status = 400, description = "Invalid name", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workload", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_workload(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Workload>, ApiProblem> {
    one_workload(&state, parse_get_workload(&name)?).await
}

#[utoipa::path(
    put,
    path = paths::WORKLOAD,
    tag = "workloads",
    operation_id = "start_workload",
    summary = "Register (if new) and start a workload; idempotent",
    description = "With a `spec`, registers the workload if it is new and starts it. \
        Without a body (or with `{}`), starts an existing, stopped workload again. \
        Starting a running workload returns it unchanged.",
    params(("name" = String, Path, pattern = "^[a-z][a-z0-9-]{0,62}$", description = "Workload name, ^[a-z][a-z0-9-]{0,62}$")),
    request_body(content = StartRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The workload after starting", body = Workload),
        (status = 400, description = "Malformed body or invalid name", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workload and no spec given", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 1 MiB", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The workload could not be launched", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_workload(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: Option<ApiJson<StartRequest>>,
) -> Result<Json<Workload>, ApiProblem> {
    let action = parse_put_workload(&name, body.map(|ApiJson(b)| b))?;
    one_workload(&state, action).await
}

#[utoipa::path(
    post,
    path = paths::WORKLOAD_STOP,
    tag = "workloads",
    operation_id = "stop_workload",
    summary = "Stop a workload and keep its record",
    params(("name" = String, Path, pattern = "^[a-z][a-z0-9-]{0,62}$", description = "Workload name, ^[a-z][a-z0-9-]{0,62}$")),
    responses(
        (status = 200, description = "The workload after stopping", body = Workload),
        (status = 400, description = "Invalid name", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workload", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn stop_workload(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Workload>, ApiProblem> {
    one_workload(&state, parse_stop_workload(&name)?).await
}

#[utoipa::path(
    delete,
    path = paths::WORKLOAD,
    tag = "workloads",
    operation_id = "remove_workload",
    summary = "Stop (if needed) and remove a workload and its logs",
    params(("name" = String, Path, pattern = "^[a-z][a-z0-9-]{0,62}$", description = "Workload name, ^[a-z][a-z0-9-]{0,62}$")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Invalid name", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workload", body = vimana_api::Problem, content_type = "application/problem+json"),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_workload(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiProblem> {
    match state.core.handle(parse_delete_workload(&name)?).await? {
        ActionOutcome::Removed => Ok(StatusCode::NO_CONTENT),
        other => Err(unexpected("Remove", &other).into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use vimana_api::{SpacecoreSpec, WorkloadSpec};

    #[test]
    fn parsers_validate_names() {
        assert!(matches!(
            parse_get_workload("Bad").unwrap_err(),
            ApiError::InvalidName(_)
        ));
        assert!(parse_stop_workload("a/b").is_err());
        assert!(parse_delete_workload("").is_err());
        assert_eq!(
            parse_delete_workload("node").unwrap(),
            Action::Remove {
                name: WorkloadName::new("node").unwrap()
            }
        );
    }

    #[test]
    fn put_translates_into_start() {
        let spec = WorkloadSpec::Spacecore(SpacecoreSpec {
            plugin: "/bin/p".into(),
            args: vec![],
            env: Default::default(),
            start_timeout_ms: None,
        });
        let action = parse_put_workload(
            "node",
            Some(StartRequest {
                spec: Some(spec.clone()),
            }),
        )
        .unwrap();
        assert_eq!(
            action,
            Action::Start {
                name: WorkloadName::new("node").unwrap(),
                spec: Some(spec)
            }
        );
        assert_eq!(
            parse_put_workload("node", None).unwrap(),
            Action::Start {
                name: WorkloadName::new("node").unwrap(),
                spec: None
            }
        );
    }
}
