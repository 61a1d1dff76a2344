#![allow(clippy::unwrap_used, clippy::expect_used)]
//! gRPC server reflection per domain, honouring the reflection policy:
//! hand-made requests with tonic-reflection's message types over hyper's
//! HTTP/2 client, and Python's grpcio-reflection as an independent client.

mod common;

use std::process::Command;

use bytes::Bytes;
use common::client::{self, grpc};
use prost::Message;
use prost_types::{
    DescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
    ServiceDescriptorProto,
};
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
use tonic_reflection::pb::v1alpha;
use vimana_gateway::{Code, GatewayConfig, ReflectionPolicy, Routes};

fn descriptor_set() -> Bytes {
    let method = |name: &str| MethodDescriptorProto {
        name: Some(name.into()),
        input_type: Some(".demo.Pair".into()),
        output_type: Some(".demo.Pair".into()),
        ..Default::default()
    };
    let service = |name: &str| ServiceDescriptorProto {
        name: Some(name.into()),
        method: vec![method("AddFloats")],
        ..Default::default()
    };
    let file = FileDescriptorProto {
        name: Some("demo/adder.proto".into()),
        package: Some("demo".into()),
        message_type: vec![DescriptorProto {
            name: Some("Pair".into()),
            ..Default::default()
        }],
        service: vec![service("Adder"), service("Hidden")],
        syntax: Some("proto3".into()),
        ..Default::default()
    };
    Bytes::from(FileDescriptorSet { file: vec![file] }.encode_to_vec())
}

fn routes(policy: ReflectionPolicy) -> Routes {
    let mut routes = common::demo_routes();
    routes.domains[0].descriptor_sets = vec![descriptor_set()];
    routes.domains[0].reflection = policy;
    routes
}

async fn reflect(h2: &mut client::H2, request: MessageRequest) -> (u32, Option<MessageResponse>) {
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let url = "http://demo.vimana.test/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
    let reply = grpc(h2, url, &req.encode_to_vec(), &[]).await;
    let response = reply
        .messages
        .first()
        .map(|m| ServerReflectionResponse::decode(m.clone()).unwrap());
    (reply.status, response.and_then(|r| r.message_response))
}

async fn listed(h2: &mut client::H2) -> Vec<String> {
    match reflect(h2, MessageRequest::ListServices(String::new())).await {
        (0, Some(MessageResponse::ListServicesResponse(list))) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test]
async fn reflection_lists_every_service_and_serves_files() {
    let gw = common::start(
        routes(ReflectionPolicy::All),
        false,
        GatewayConfig::default(),
    )
    .await;
    let mut h2 = client::h2c(gw.addr).await;
    let names = listed(&mut h2).await;
    for expected in [
        "demo.Adder",
        "demo.Hidden",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} not in {names:?}"
        );
    }
    let file = reflect(
        &mut h2,
        MessageRequest::FileContainingSymbol("demo.Adder".into()),
    )
    .await;
    match file {
        (0, Some(MessageResponse::FileDescriptorResponse(f))) => {
            let fd = FileDescriptorProto::decode(&f.file_descriptor_proto[0][..]).unwrap();
            assert_eq!(fd.name.as_deref(), Some("demo/adder.proto"));
        }
        other => panic!("unexpected answer {other:?}"),
    }

    // v1alpha answers too.
    let req = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let url =
        "http://demo.vimana.test/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
    let reply = grpc(&mut h2, url, &req.encode_to_vec(), &[]).await;
    assert_eq!(reply.status, 0);
    let resp = v1alpha::ServerReflectionResponse::decode(reply.messages[0].clone()).unwrap();
    assert!(format!("{resp:?}").contains("demo.Adder"));
}

#[tokio::test]
async fn all_but_hides_a_service_and_none_but_lists_only_its_own() {
    let policy = ReflectionPolicy::AllBut(vec!["demo.Hidden".into()]);
    let gw = common::start(routes(policy), false, GatewayConfig::default()).await;
    let mut h2 = client::h2c(gw.addr).await;
    let names = listed(&mut h2).await;
    assert!(names.contains(&"demo.Adder".to_string()), "{names:?}");
    assert!(!names.contains(&"demo.Hidden".to_string()), "{names:?}");

    gw.gateway
        .set_routes(routes(ReflectionPolicy::NoneBut(vec![
            "demo.Hidden".into(),
        ])))
        .unwrap();
    assert_eq!(listed(&mut h2).await, vec!["demo.Hidden".to_string()]);

    gw.gateway
        .set_routes(routes(ReflectionPolicy::NoneBut(Vec::new())))
        .unwrap();
    let (status, _) = reflect(&mut h2, MessageRequest::ListServices(String::new())).await;
    assert_eq!(status, Code::Unimplemented.as_u32());
}

const PYTHON_LIST: &str = r#"
import sys, grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
channel = grpc.insecure_channel('127.0.0.1:' + sys.argv[1],
                                options=[('grpc.default_authority', 'demo.vimana.test')])
db = ProtoReflectionDescriptorDatabase(channel)
print(sorted(db.get_services()))
"#;

#[tokio::test]
async fn python_grpcio_reflection_lists_services_by_policy() {
    let probe = Command::new("python3")
        .args(["-c", "import grpc, grpc_reflection"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("skipped: python3 with grpcio-reflection is not available");
        return;
    }
    let policy = ReflectionPolicy::AllBut(vec!["demo.Hidden".into()]);
    let gw = common::start(routes(policy), false, GatewayConfig::default()).await;
    let port = gw.addr.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", PYTHON_LIST, &port])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("'demo.Adder'"), "{stdout}");
    assert!(!stdout.contains("demo.Hidden"), "{stdout}");
}
