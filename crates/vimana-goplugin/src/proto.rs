//! Generated go-plugin internal protos (package `plugin`): GRPCController,
//! GRPCStdio and GRPCBroker, clients and servers.

#![allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]

tonic::include_proto!("plugin");
