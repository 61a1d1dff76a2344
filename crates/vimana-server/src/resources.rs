//! `/v1/resources`: apply, get and delete `api.vimana.host/v1alpha1`
//! resources (Vimana, Domain, Server, Component).

use axum::Json;
use axum::extract::State;
use vimana_api::{
    Action, ActionOutcome, ApiError, ApplyRequest, ChangeList, DeleteRequest, ResourceQuery,
};
use vimana_resources::{Origin, Resource, ResourceKind, ResourceRef};

use crate::AppState;
use crate::extract::{ApiJson, ApiPath};
use crate::paths;
use crate::problem::ApiProblem;
use crate::workloads::unexpected;

const PROBLEM: &str = "application/problem+json";

/// A kind as a user types it: `Domain`, `domains`, `dom`…
pub fn parse_kind(kind: &str) -> Result<ResourceKind, ApiError> {
    ResourceKind::from_alias(kind).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{kind:?} is not a resource kind; use vimanas, domains, servers or components (also singular, or vm, dom, srv, comp)"
        ))
    })
}

/// `POST /v1/resources`: every resource is checked (schema and field
/// rules) here; the core checks them against the stored ones.
pub fn parse_apply_resources(body: ApplyRequest) -> Result<Action, ApiError> {
    if body.resources.is_empty() {
        return Err(ApiError::BadRequest(
            "resources is empty; send at least one resource object to apply".to_owned(),
        ));
    }
    if !body.origins.is_empty() && body.origins.len() != body.resources.len() {
        return Err(ApiError::BadRequest(format!(
            "origins has {} entries for {} resources; send one origin per resource or none",
            body.origins.len(),
            body.resources.len()
        )));
    }
    let mut resources = Vec::with_capacity(body.resources.len());
    for (i, value) in body.resources.into_iter().enumerate() {
        let origin = match body.origins.get(i) {
            Some(o) => Origin {
                file: o.file.clone(),
                document: o.document,
            },
            None => Origin {
                file: "request".to_owned(),
                document: i + 1,
            },
        };
        let resource = Resource::parse_json(Some(origin), value)
            .map_err(|e| ApiError::invalid_resource(&e))?;
        resources.push(resource);
    }
    Ok(Action::ApplyResources { resources })
}

/// `GET /v1/resources`, `GET /v1/resources/{kind}` and
/// `GET /v1/resources/{kind}/{name}`.
pub fn parse_get_resources(kind: Option<&str>, name: Option<&str>) -> Result<Action, ApiError> {
    Ok(Action::GetResources {
        query: ResourceQuery {
            kind: kind.map(parse_kind).transpose()?,
            name: name.map(str::to_owned),
        },
    })
}

/// `DELETE /v1/resources/{kind}/{name}`.
pub fn parse_delete_resource(kind: &str, name: &str) -> Result<Action, ApiError> {
    Ok(Action::DeleteResources {
        refs: vec![ResourceRef {
            kind: parse_kind(kind)?,
            name: name.to_owned(),
        }],
    })
}

/// `POST /v1/resources/delete`.
pub fn parse_delete_resources(body: DeleteRequest) -> Result<Action, ApiError> {
    let refs = body
        .resources
        .into_iter()
        .map(|id| {
            Ok(ResourceRef {
                kind: parse_kind(&id.kind)?,
                name: id.name,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    if refs.is_empty() {
        return Err(ApiError::BadRequest(
            "resources is empty; name at least one {kind, name} to delete".to_owned(),
        ));
    }
    Ok(Action::DeleteResources { refs })
}

async fn changes(state: &AppState, action: Action) -> Result<Json<ChangeList>, ApiProblem> {
    let kind = match &action {
        Action::ApplyResources { .. } => "ApplyResources",
        _ => "DeleteResources",
    };
    match state.core.handle(action).await? {
        ActionOutcome::ResourceChanges(list) => Ok(Json(list)),
        other => Err(unexpected(kind, &other).into()),
    }
}

async fn listing(state: &AppState, action: Action) -> Result<Vec<Resource>, ApiProblem> {
    match state.core.handle(action).await? {
        ActionOutcome::Resources(list) => Ok(list),
        other => Err(unexpected("GetResources", &other).into()),
    }
}

#[utoipa::path(
    post,
    path = paths::RESOURCES,
    tag = "resources",
    operation_id = "apply_resources",
    summary = "Apply resources, all or nothing",
    description = "Validates every resource (schema, field rules) and the whole set against the \
        stored resources (references, ids, versionWeights, immutable Component versions), then \
        stores all of them in one transaction. One invalid resource: 422 and nothing is stored.",
    request_body(content = ApplyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "created/configured/unchanged per resource", body = ChangeList),
        (status = 400, description = "Malformed body", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 413, description = "Body larger than 1 MiB", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 422, description = "A resource breaks a rule", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = PROBLEM),
    )
)]
pub(crate) async fn apply_resources(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ApplyRequest>,
) -> Result<Json<ChangeList>, ApiProblem> {
    changes(&state, parse_apply_resources(body)?).await
}

#[utoipa::path(
    get,
    path = paths::RESOURCES,
    tag = "resources",
    operation_id = "list_all_resources",
    summary = "Every stored resource with its status, in dependency order",
    responses(
        (status = 200, description = "Resource objects", body = [Object]),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = PROBLEM),
    )
)]
pub(crate) async fn list_all_resources(
    State(state): State<AppState>,
) -> Result<Json<Vec<Resource>>, ApiProblem> {
    Ok(Json(
        listing(&state, parse_get_resources(None, None)?).await?,
    ))
}

#[utoipa::path(
    get,
    path = paths::RESOURCES_OF_KIND,
    tag = "resources",
    operation_id = "list_resources",
    summary = "Stored resources of one kind, by name",
    params(("kind" = String, Path, description = "vimanas, domains, servers, components (or singular, vm, dom, srv, comp)")),
    responses(
        (status = 200, description = "Resource objects", body = [Object]),
        (status = 400, description = "Unknown kind", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = PROBLEM),
    )
)]
pub(crate) async fn list_resources(
    State(state): State<AppState>,
    ApiPath(kind): ApiPath<String>,
) -> Result<Json<Vec<Resource>>, ApiProblem> {
    Ok(Json(
        listing(&state, parse_get_resources(Some(&kind), None)?).await?,
    ))
}

#[utoipa::path(
    get,
    path = paths::RESOURCE,
    tag = "resources",
    operation_id = "get_resource",
    summary = "One stored resource with its status",
    params(
        ("kind" = String, Path, description = "vimanas, domains, servers, components (or singular, vm, dom, srv, comp)"),
        ("name" = String, Path, description = "metadata.name, or for a Component <domain-id>:<server-id>@<version>"),
    ),
    responses(
        (status = 200, description = "The resource object", body = Object),
        (status = 400, description = "Unknown kind", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 404, description = "No such resource", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = PROBLEM),
    )
)]
pub(crate) async fn get_resource(
    State(state): State<AppState>,
    ApiPath((kind, name)): ApiPath<(String, String)>,
) -> Result<Json<Resource>, ApiProblem> {
    let list = listing(&state, parse_get_resources(Some(&kind), Some(&name))?).await?;
    list.into_iter().next().map(Json).ok_or_else(|| {
        ApiError::Internal("the core answered GetResources with nothing".into()).into()
    })
}

#[utoipa::path(
    delete,
    path = paths::RESOURCE,
    tag = "resources",
    operation_id = "delete_resource",
    summary = "Delete one resource",
    params(
        ("kind" = String, Path, description = "vimanas, domains, servers, components (or singular, vm, dom, srv, comp)"),
        ("name" = String, Path, description = "metadata.name, or for a Component <domain-id>:<server-id>@<version>"),
    ),
    responses(
        (status = 200, description = "The deletion", body = ChangeList),
        (status = 400, description = "Unknown kind", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 404, description = "No such resource", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 409, description = "Other resources still refer to it", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = PROBLEM),
    )
)]
pub(crate) async fn delete_resource(
    State(state): State<AppState>,
    ApiPath((kind, name)): ApiPath<(String, String)>,
) -> Result<Json<ChangeList>, ApiProblem> {
    changes(&state, parse_delete_resource(&kind, &name)?).await
}

#[utoipa::path(
    post,
    path = paths::RESOURCES_DELETE,
    tag = "resources",
    operation_id = "delete_resources",
    summary = "Delete several resources, all or nothing",
    request_body(content = DeleteRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "deleted per resource", body = ChangeList),
        (status = 400, description = "Malformed body or unknown kind", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 404, description = "A resource does not exist", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 409, description = "Remaining resources still refer to one", body = vimana_api::Problem, content_type = PROBLEM),
        (status = 500, description = "Internal error", body = vimana_api::Problem, content_type = PROBLEM),
    )
)]
pub(crate) async fn delete_resources(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DeleteRequest>,
) -> Result<Json<ChangeList>, ApiProblem> {
    changes(&state, parse_delete_resources(body)?).await
}
