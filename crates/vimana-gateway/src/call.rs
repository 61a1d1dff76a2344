//! A gRPC call to a service version: pick the version, read the request
//! message within the size limit, run the backend's call on this task, and
//! answer within the deadline.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use http::{Request, Response};
use hyper::body::Incoming;
use vimana_grpc::{Code, Status};

use crate::body::GatewayBody;
use crate::budget::ConnBudget;
use crate::dispatch::split_path;
use crate::gateway::Inner;
use crate::grpc;
use crate::table::Domain;

/// Awaits a backend call; a panic becomes `INTERNAL` (the connection and
/// its other streams carry on).
pub(crate) async fn guarded<T>(call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_string());
            Err(Status::internal(format!("backend failed: {why}")))
        }
    }
}

/// Waits for `call` up to `deadline` plus the grace.
pub(crate) async fn within<T>(
    inner: &Inner,
    deadline: Duration,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let limit = deadline.saturating_add(inner.config.deadline_grace);
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer within the deadline of {deadline:?}"
        ))),
    }
}

/// Answers a gRPC call to one of the domain's services.
pub(crate) async fn grpc_call(
    inner: &Inner,
    domain: &Domain,
    req: Request<Incoming>,
) -> Response<GatewayBody> {
    let Some((service, method)) = split_path(req.uri().path()) else {
        return grpc::status_response(None, &Status::unimplemented("bad gRPC path"));
    };
    let Some(server) = domain.route.services.get(service).cloned() else {
        let status = match domain.route.unavailable.get(service) {
            Some(why) => Status::new(
                Code::Unavailable,
                format!("no version of {service} is available: {why}"),
            ),
            None => Status::unimplemented(format!("unknown service {service}")),
        };
        return grpc::status_response(None, &status);
    };
    let method = method.to_string();
    let Some(version) = server.pick() else {
        let status = Status::new(
            Code::Unavailable,
            format!("no version of {service} takes traffic"),
        );
        return grpc::status_response(None, &status);
    };
    let component = version.name.clone();
    let Some(backend) = version.grpc.clone() else {
        let status = Status::unimplemented(format!("{component} serves no gRPC"));
        return grpc::status_response(Some(&component), &status);
    };
    let mut deadline = server.deadline;
    if let Some(t) = req
        .headers()
        .get("grpc-timeout")
        .and_then(grpc::parse_timeout)
    {
        deadline = deadline.min(t);
    }
    let start = Instant::now();
    let limit = inner.config.max_request_bytes;
    let conn = req.extensions().get::<ConnBudget>().cloned();
    let call = async move {
        let message = grpc::read_message(req.into_body(), limit).await?;
        let _decode = crate::budget::reserve(inner, conn.as_ref(), message.len())?;
        let left = deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(Status::deadline_exceeded(
                "deadline passed while reading the request",
            ));
        }
        guarded(run(backend.as_ref(), &method, message, left)).await
    };
    match within(inner, deadline, call).await {
        Ok(messages) => grpc::ok_response(Some(&component), messages),
        Err(status) => grpc::status_response(Some(&component), &status),
    }
}

async fn run(
    backend: &dyn crate::GrpcBackend,
    method: &str,
    message: Bytes,
    deadline: Duration,
) -> Result<Vec<Bytes>, Status> {
    if backend.is_server_streaming(method) {
        backend.server_stream(method, message, deadline).await
    } else {
        backend
            .unary(method, message, deadline)
            .await
            .map(|m| vec![m])
    }
}
