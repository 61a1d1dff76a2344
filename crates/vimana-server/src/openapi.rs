//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use vimana_api::{
    ApplyRequest, ChangeKind, ChangeList, DeleteRequest, DesiredState, Event, EventKind, LogQuery,
    LogRecord, LogStream, Problem, ResourceChange, ResourceId, SourceRef, SpacecoreSpec,
    StartRequest, Workload, WorkloadKind, WorkloadName, WorkloadSpec, WorkloadState,
};

use crate::system::SystemInfo;
use crate::{events, logs, paths, resources, system, workloads};

/// The API description; [`openapi`] renders it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vimana daemon API",
        description = "REST API of the vimana daemon. Errors are RFC 9457 problem details \
            (application/problem+json). On TCP every request needs `Authorization: Bearer \
            <token>` with the token from VIMANA_HOME/token; the unix socket needs none."
    ),
    paths(
        workloads::list_workloads,
        workloads::get_workload,
        workloads::put_workload,
        workloads::stop_workload,
        workloads::delete_workload,
        logs::get_workload_logs,
        resources::apply_resources,
        resources::list_all_resources,
        resources::list_resources,
        resources::get_resource,
        resources::delete_resource,
        resources::delete_resources,
        events::get_events,
        system::get_system,
        get_openapi,
    ),
    components(schemas(
        Workload,
        WorkloadName,
        WorkloadKind,
        WorkloadState,
        DesiredState,
        WorkloadSpec,
        SpacecoreSpec,
        StartRequest,
        LogQuery,
        LogRecord,
        LogStream,
        Event,
        EventKind,
        Problem,
        SystemInfo,
        ApplyRequest,
        SourceRef,
        DeleteRequest,
        ResourceId,
        ChangeList,
        ResourceChange,
        ChangeKind,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "workloads", description = "Register, start, stop and remove workloads"),
        (name = "logs", description = "Merged workload logs"),
        (name = "resources", description = "api.vimana.host/v1alpha1 resources: Vimana, Domain, Server, Component"),
        (name = "events", description = "The append-only event log"),
        (name = "system", description = "The daemon itself"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Required on TCP listeners: the token in VIMANA_HOME/token. A missing \
                         or wrong token is a 401 problem.",
                    ))
                    .build(),
            ),
        );
        let unauthorized = ResponseBuilder::new()
            .description("Missing or wrong bearer token (TCP listeners only)")
            .content(
                crate::PROBLEM_JSON,
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                // No token on the unix socket, a bearer token on TCP.
                op.security = Some(vec![
                    SecurityRequirement::default(),
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                ]);
                op.responses
                    .responses
                    .entry("401".to_string())
                    .or_insert_with(|| unauthorized.clone().into());
            }
        }
    }
}

/// The OpenAPI 3 document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[utoipa::path(
    get,
    path = paths::OPENAPI,
    tag = "system",
    operation_id = "openapi",
    summary = "This OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"))
)]
pub(crate) async fn get_openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}
