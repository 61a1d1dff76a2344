//! From WAT and WIT to a component: resolve the WIT packages, embed the
//! world into the core module, and let wit-component wrap it.

use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::{PackageId, Resolve, WorldId};

use crate::{BuildError, GRPC_WIT, WIT};

/// The world of `wit/adder.wit` the component implements.
pub const WORLD: &str = "services";

/// Resolves `vimana:grpc@0.1.0` and then `foo:bar` (whose
/// `use vimana:grpc/types@0.1.0.{status}` refers to the package pushed
/// first; no `deps/` directory is needed when both are pushed from source in
/// this order), and selects the `services` world.
pub fn resolve() -> Result<(Resolve, WorldId), BuildError> {
    let mut resolve = Resolve::default();
    push(&mut resolve, "grpc.wit", GRPC_WIT)?;
    let pkg = push(&mut resolve, "adder.wit", WIT)?;
    let world = resolve
        .select_world(&[pkg], Some(WORLD))
        .map_err(|e| BuildError::Wit {
            file: "adder.wit",
            message: format!("{e:#}"),
        })?;
    Ok((resolve, world))
}

fn push(resolve: &mut Resolve, file: &'static str, text: &str) -> Result<PackageId, BuildError> {
    resolve
        .push_source(file, text)
        .map_err(|e| BuildError::Wit {
            file,
            message: format!("{e:#}"),
        })
}

/// Parses `wat` into a core module, embeds the `services` world (UTF-8
/// strings) and encodes the result as a validated component.
pub fn component_from_wat(wat: &str) -> Result<Vec<u8>, BuildError> {
    let mut module = wat::parse_str(wat).map_err(|e| BuildError::Wat(e.to_string()))?;
    let (resolve, world) = resolve()?;
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .map_err(|e| BuildError::Encode(format!("{e:#}")))?;
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .map_err(|e| BuildError::Encode(format!("{e:#}")))?
        .encode()
        .map_err(|e| BuildError::Encode(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_exports_the_adder_service() {
        let (resolve, world) = resolve().unwrap_or_else(|e| panic!("{e}"));
        let exports: Vec<String> = resolve.worlds[world]
            .exports
            .keys()
            .map(|k| resolve.name_world_key(k))
            .collect();
        assert_eq!(exports, ["foo:bar/adder-service"]);
    }

    #[test]
    fn component_decodes_to_the_services_world() {
        let wasm = component_from_wat(crate::WAT).unwrap_or_else(|e| panic!("{e}"));
        let decoded = wit_component::decode(&wasm).unwrap_or_else(|e| panic!("{e:#}"));
        let wit_component::DecodedWasm::Component(resolve, world) = decoded else {
            panic!("expected a component");
        };
        let world = &resolve.worlds[world];
        // The only import is the type-only `vimana:grpc/types` (for
        // `status`): no functions, no WASI.
        let imports: Vec<String> = world
            .imports
            .keys()
            .map(|k| resolve.name_world_key(k))
            .collect();
        assert_eq!(imports, ["vimana:grpc/types@0.1.0"]);
        for item in world.imports.values() {
            let wit_parser::WorldItem::Interface { id, .. } = item else {
                panic!("unexpected import {item:?}");
            };
            assert!(resolve.interfaces[*id].functions.is_empty());
        }
        let exports: Vec<String> = world
            .exports
            .keys()
            .map(|k| resolve.name_world_key(k))
            .collect();
        assert_eq!(exports, ["foo:bar/adder-service"]);
    }

    #[test]
    fn bad_wat_is_reported() {
        assert!(matches!(
            component_from_wat("(module"),
            Err(BuildError::Wat(_))
        ));
    }

    #[test]
    fn wrong_signature_is_reported() {
        let wat = r#"(module
  (memory (export "memory") 1)
  (func (export "foo:bar/adder-service#add-floats") (param f64) (result i32)
    i32.const 0))"#;
        assert!(matches!(
            component_from_wat(wat),
            Err(BuildError::Encode(_))
        ));
    }
}
