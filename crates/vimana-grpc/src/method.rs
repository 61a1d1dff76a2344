//! One gRPC method mapped onto one component function.

use std::sync::Arc;

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use wasmtime::component::Val;

use crate::from_val::{shape, val_to_message};
use crate::layout::Layouts;
use crate::to_val::{Budget, PathError, decode_bound, message_to_val};
use crate::wirepath::locate;
use crate::{Code, Status};

/// How one gRPC method maps onto a component export.
#[derive(Debug, Clone)]
pub struct MethodMap {
    /// The exported interface, e.g. `foo:bar/adder-service`.
    pub interface: String,
    /// The function in that interface, e.g. `add-floats`.
    pub func: String,
    /// The service's full protobuf name, e.g. `foo.bar.AdderService`.
    pub service: String,
    /// The method's protobuf name, e.g. `AddFloats`.
    pub method: String,
    /// The function returns `result<list<response>, status>`; each element
    /// is sent as one message of the stream.
    pub server_streaming: bool,
    /// The client streams requests (client or bidi streaming): not
    /// supported, every call yields UNIMPLEMENTED.
    pub client_streaming: bool,
    pub(crate) input: MessageDescriptor,
    pub(crate) output: MessageDescriptor,
    pub(crate) layouts: Arc<Layouts>,
    pub(crate) unsupported: Option<String>,
}

fn at(prefix: &str, (path, what): PathError) -> String {
    if path.is_empty() {
        format!("{prefix}: {what}")
    } else {
        format!("{prefix}: field {path}: {what}")
    }
}

impl MethodMap {
    /// The request message.
    pub fn input(&self) -> &MessageDescriptor {
        &self.input
    }

    /// The response message.
    pub fn output(&self) -> &MessageDescriptor {
        &self.output
    }

    /// Why this method has no function (client/bidi streaming, empty
    /// messages); `None` when it is callable.
    pub fn unsupported_reason(&self) -> Option<&str> {
        self.unsupported.as_deref()
    }

    fn check_supported(&self) -> Result<(), Status> {
        match &self.unsupported {
            Some(reason) => Err(Status::unimplemented(format!(
                "{}/{} is not available: {reason}",
                self.service, self.method
            ))),
            None => Ok(()),
        }
    }

    /// Decodes a protobuf request into the function's `request` argument.
    /// Malformed input is INVALID_ARGUMENT naming the field path; a request
    /// whose values would take more than [`crate::decode_bound`] of its
    /// size is RESOURCE_EXHAUSTED.
    pub fn decode_request(&self, protobuf: &[u8]) -> Result<Val, Status> {
        self.check_supported()?;
        let msg = DynamicMessage::decode(self.input.clone(), protobuf).map_err(|e| {
            let detail =
                locate(&self.input, protobuf, "").unwrap_or_else(|| (String::new(), e.to_string()));
            Status::invalid_argument(at("invalid request", detail))
        })?;
        self.request_val(&msg, protobuf.len())
    }

    /// Decodes a JSON request (proto3 JSON mapping) into the function's
    /// `request` argument; errors are INVALID_ARGUMENT.
    pub fn decode_json_request(&self, json: &[u8]) -> Result<Val, Status> {
        self.check_supported()?;
        let mut de = serde_json::Deserializer::from_slice(json);
        let msg = DynamicMessage::deserialize(self.input.clone(), &mut de)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|e| Status::invalid_argument(format!("invalid request: {e}")))?;
        self.request_val(&msg, json.len())
    }

    fn request_val(&self, msg: &DynamicMessage, wire_len: usize) -> Result<Val, Status> {
        let mut budget = Budget::new(decode_bound(wire_len));
        message_to_val(&self.layouts, msg, "", &mut budget).map_err(|e| {
            if budget.exhausted {
                Status::resource_exhausted(at("request too large to decode", e))
            } else {
                Status::invalid_argument(at("invalid request", e))
            }
        })
    }

    /// The success payload of a function result, or the status it failed
    /// with (`Err(Some(status))` of the WIT `result`).
    fn ok_payload<'a>(&self, result: &'a Val) -> Result<&'a Val, Status> {
        match result {
            Val::Result(Ok(Some(payload))) => Ok(payload),
            Val::Result(Err(Some(status))) => Err(status_from_val(status)),
            other => Err(Status::internal(format!(
                "invalid response from {}: expected result<_, status> with payload, got {}",
                self.func,
                shape(other)
            ))),
        }
    }

    fn response_message(&self, payload: &Val) -> Result<DynamicMessage, Status> {
        val_to_message(&self.layouts, &self.output, payload, "")
            .map_err(|e| Status::internal(at("invalid response", e)))
    }

    /// Encodes the function's return value (`result<response, status>`) as
    /// a protobuf response, or returns the status it failed with. A value
    /// that does not match the descriptor is INTERNAL naming the path.
    pub fn encode_response(&self, result: &Val) -> Result<Vec<u8>, Status> {
        let payload = self.ok_payload(result)?;
        Ok(self.response_message(payload)?.encode_to_vec())
    }

    /// Like [`MethodMap::encode_response`], as proto3 JSON.
    pub fn response_to_json(&self, result: &Val) -> Result<Vec<u8>, Status> {
        let payload = self.ok_payload(result)?;
        let msg = self.response_message(payload)?;
        serde_json::to_vec(&msg)
            .map_err(|e| Status::internal(format!("encoding JSON response: {e}")))
    }

    /// Encodes a server-streaming function's return value
    /// (`result<list<response>, status>`) as one protobuf message per element.
    pub fn encode_stream_response(&self, result: &Val) -> Result<Vec<Vec<u8>>, Status> {
        self.stream_messages(result)
            .map(|msgs| msgs.iter().map(Message::encode_to_vec).collect())
    }

    /// Like [`MethodMap::encode_stream_response`], one JSON document per
    /// element.
    pub fn stream_response_to_json(&self, result: &Val) -> Result<Vec<Vec<u8>>, Status> {
        self.stream_messages(result)?
            .iter()
            .map(|m| {
                serde_json::to_vec(m)
                    .map_err(|e| Status::internal(format!("encoding JSON response: {e}")))
            })
            .collect()
    }

    fn stream_messages(&self, result: &Val) -> Result<Vec<DynamicMessage>, Status> {
        let payload = self.ok_payload(result)?;
        let Val::List(items) = payload else {
            return Err(Status::internal(format!(
                "invalid response: expected list of responses, got {}",
                shape(payload)
            )));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                val_to_message(&self.layouts, &self.output, item, &format!("[{i}]"))
                    .map_err(|e| Status::internal(at("invalid response", e)))
            })
            .collect()
    }
}

/// Reads a `vimana:grpc/types.status` record (`{code: enum, message}`).
pub fn status_from_val(val: &Val) -> Status {
    let Val::Record(fields) = val else {
        return Status::internal(format!("invalid error status: got {}", shape(val)));
    };
    let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let code = match get("code") {
        Some(Val::Enum(case)) => Code::from_wit_name(case),
        _ => None,
    };
    let message = match get("message") {
        Some(Val::String(s)) => s.clone(),
        _ => String::new(),
    };
    match code {
        Some(Code::Ok) => Status::new(Code::Unknown, message),
        Some(code) => Status::new(code, message),
        None => Status::internal(format!("invalid error status record: {message}")),
    }
}
