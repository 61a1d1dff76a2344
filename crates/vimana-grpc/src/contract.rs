//! A gRPC contract: the services of a descriptor set and their mapping,
//! and compiling `.proto` files into such a set.

use std::path::Path;
use std::sync::Arc;

use prost::Message as _;
use prost_reflect::prost_types::FileDescriptorSet;
use prost_reflect::{DescriptorPool, Kind, MethodDescriptor, ServiceDescriptor};

use crate::layout::{Layouts, Names};
use crate::naming::{to_kebab, wit_package};
use crate::{MapError, MethodMap};

/// Compiles `.proto` files with protox and returns the encoded
/// `FileDescriptorSet`, imports included (so it is self-contained) and
/// source info stripped.
///
/// `files` are paths of the files to compile; each must lie under one of the
/// `includes` directories (or be relative to one).
pub fn compile_protos(
    files: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<Vec<u8>, MapError> {
    let mut compiler = protox::Compiler::new(includes.iter().map(AsRef::as_ref))
        .map_err(|e| MapError::Compile(e.to_string()))?;
    compiler.include_source_info(false).include_imports(true);
    compiler
        .open_files(files.iter().map(AsRef::as_ref))
        .map_err(|e| MapError::Compile(e.to_string()))?;
    Ok(compiler.encode_file_descriptor_set())
}

/// Refuses files whose `syntax` is neither proto2 nor proto3 (e.g.
/// `editions`) before prost-reflect sees them: its `DescriptorPool::decode`
/// (0.16) panics on them instead of returning an error.
fn check_syntax(bytes: &[u8]) -> Result<(), MapError> {
    let set = FileDescriptorSet::decode(bytes).map_err(|e| MapError::Descriptor(e.to_string()))?;
    for file in &set.file {
        if let Some(syntax) = file.syntax.as_deref()
            && syntax != "proto2"
            && syntax != "proto3"
        {
            return Err(MapError::Descriptor(format!(
                "file `{}` has syntax `{syntax}`; only proto2 and proto3 are supported: compile the .proto with `syntax = \"proto3\";`",
                file.name()
            )));
        }
    }
    Ok(())
}

/// Refuses map entry messages without a key (1) of a map key type and a
/// value (2) field: prost-reflect assumes both and panics otherwise.
fn check_map_entries(pool: &DescriptorPool) -> Result<(), MapError> {
    for message in pool.all_messages().filter(|m| m.is_map_entry()) {
        let key = message.get_field(1).map(|f| f.kind());
        let key_ok = matches!(
            key,
            Some(
                Kind::Int32
                    | Kind::Int64
                    | Kind::Uint32
                    | Kind::Uint64
                    | Kind::Sint32
                    | Kind::Sint64
                    | Kind::Fixed32
                    | Kind::Fixed64
                    | Kind::Sfixed32
                    | Kind::Sfixed64
                    | Kind::Bool
                    | Kind::String
            )
        );
        if !key_ok || message.get_field(2).is_none() {
            return Err(MapError::Descriptor(format!(
                "map entry message `{}` must have a key field 1 of an integer, bool or string type and a value field 2; regenerate the descriptor set from the .proto (protoc or protox)",
                message.full_name()
            )));
        }
    }
    Ok(())
}

/// The services of a protobuf `FileDescriptorSet`, mapped onto component
/// exports (see docs/grpc-mapping.md).
#[derive(Debug, Clone)]
pub struct Contract {
    pub(crate) pool: DescriptorPool,
    bytes: Vec<u8>,
    pub(crate) layouts: Arc<Layouts>,
    pub(crate) services: Vec<ServiceMap>,
}

/// One service and its methods.
#[derive(Debug, Clone)]
pub(crate) struct ServiceMap {
    pub desc: ServiceDescriptor,
    /// The interface name without package, e.g. `adder-service`.
    pub interface: String,
    pub methods: Vec<MethodMap>,
}

impl Contract {
    /// Builds the contract of an encoded `FileDescriptorSet` (it should
    /// include imports). Fails on names without a WIT form, name collisions
    /// and recursive messages.
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<Contract, MapError> {
        check_syntax(bytes)?;
        let pool =
            DescriptorPool::decode(bytes).map_err(|e| MapError::Descriptor(e.to_string()))?;
        check_map_entries(&pool)?;
        let mut layouts = Layouts::default();
        let mut pending = Vec::new();
        let mut interfaces = Names::new("the world `services`");
        for service in pool.services() {
            let package = wit_package(service.package_name())?;
            let interface = to_kebab(service.name())?;
            interfaces.insert(&format!("{package}/{interface}"), service.full_name())?;
            let mut funcs = Names::new(service.full_name());
            let mut methods = Vec::new();
            for method in service.methods() {
                let func = to_kebab(method.name())?;
                funcs.insert(&func, method.name())?;
                let unsupported = support(&mut layouts, &method)?;
                methods.push((method, func, unsupported));
            }
            pending.push((service, package, interface, methods));
        }
        let layouts = Arc::new(layouts);
        let services = pending
            .into_iter()
            .map(|(desc, package, interface, methods)| {
                let methods = methods
                    .into_iter()
                    .map(|(m, func, unsupported)| MethodMap {
                        interface: format!("{package}/{interface}"),
                        func,
                        service: desc.full_name().to_string(),
                        method: m.name().to_string(),
                        server_streaming: m.is_server_streaming(),
                        client_streaming: m.is_client_streaming(),
                        input: m.input(),
                        output: m.output(),
                        layouts: Arc::clone(&layouts),
                        unsupported,
                    })
                    .collect();
                ServiceMap {
                    desc,
                    interface,
                    methods,
                }
            })
            .collect();
        Ok(Contract {
            pool,
            bytes: bytes.to_vec(),
            layouts,
            services,
        })
    }

    /// The full names of the services, in descriptor order.
    pub fn services(&self) -> Vec<String> {
        self.services
            .iter()
            .map(|s| s.desc.full_name().to_string())
            .collect()
    }

    /// The mapping of one method, by service full name and method name.
    pub fn method(&self, service_full_name: &str, method_name: &str) -> Option<&MethodMap> {
        self.services
            .iter()
            .find(|s| s.desc.full_name() == service_full_name)?
            .methods
            .iter()
            .find(|m| m.method == method_name)
    }

    /// Every method of every service, in descriptor order.
    pub fn methods(&self) -> impl Iterator<Item = &MethodMap> {
        self.services.iter().flat_map(|s| s.methods.iter())
    }

    /// The original `FileDescriptorSet` bytes (for gRPC reflection).
    pub fn descriptor_set(&self) -> &[u8] {
        &self.bytes
    }

    /// The descriptor pool the contract was built from.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }
}

/// Adds the method's messages to `layouts`; returns why it is unsupported.
fn support(layouts: &mut Layouts, method: &MethodDescriptor) -> Result<Option<String>, MapError> {
    if method.is_client_streaming() {
        let kind = if method.is_server_streaming() {
            "bidirectional"
        } else {
            "client"
        };
        return Ok(Some(format!("{kind} streaming is not supported")));
    }
    for msg in [method.input(), method.output()] {
        if let Some(empty) = layouts.add(&msg)? {
            return Ok(Some(format!(
                "message {empty} has no fields and component records cannot be empty"
            )));
        }
    }
    Ok(None)
}
