//! The adder's other artifacts: the descriptor set, the resources YAML, and
//! the `build-adder` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use prost::Message;
use prost_types::FileDescriptorSet;
use vimana_resources::{ImageSource, Resource, ResourceSet, parse_documents, validate};

const YAML: &str = include_str!("../adder.yaml");

#[test]
fn descriptor_set_has_the_service() {
    let bytes = adder::descriptor_set().unwrap();
    let set = FileDescriptorSet::decode(bytes.as_slice()).unwrap();
    assert_eq!(set.file.len(), 1);
    let file = &set.file[0];
    assert_eq!(file.name(), adder::PROTO_FILE);
    assert_eq!(file.package(), "foo.bar");
    let names: Vec<String> = file
        .service
        .iter()
        .map(|s| format!("{}.{}", file.package(), s.name()))
        .collect();
    assert_eq!(names, [adder::SERVICE]);
    let service = &file.service[0];
    assert_eq!(service.method.len(), 1);
    let method = &service.method[0];
    assert_eq!(method.name(), "AddFloats");
    assert_eq!(method.input_type(), ".foo.bar.AddFloatsRequest");
    assert_eq!(method.output_type(), ".foo.bar.AddFloatsResponse");
    // Comments are kept for documentation (OpenAPI, reflection).
    assert!(file.source_code_info.is_some());
}

#[test]
fn resources_parse_validate_and_apply() {
    let resources = parse_documents("adder.yaml", YAML).unwrap();
    assert_eq!(resources.len(), 4);
    let mut set = ResourceSet::new();
    validate(&resources, &set).unwrap();
    set.apply(resources.clone()).unwrap();
    assert_eq!(set.len(), 4);

    let server = set.servers().next().unwrap();
    assert_eq!(server.spec.services, [adder::SERVICE]);
    let component = resources
        .iter()
        .find_map(|r| match r {
            Resource::Component(c) => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(component.spec.version, "1.0.0");
    assert_eq!(
        component.spec.image_source(),
        ImageSource::Path("../../target/adder.wasm".into())
    );
}

#[test]
fn build_adder_writes_component_and_descriptor_set() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("out/adder.wasm");
    let pb = dir.path().join("adder.pb");
    let out = Command::new(env!("CARGO_BIN_EXE_build-adder"))
        .arg(&wasm)
        .arg("--descriptor-set")
        .arg(&pb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let written = std::fs::read(&wasm).unwrap();
    let set = adder::descriptor_set().unwrap();
    // The contract is embedded by default, exactly as `vimana image embed` does.
    assert_eq!(
        written,
        vimana_services::contract_section::embed(&adder::component().unwrap(), &set).unwrap()
    );
    assert_eq!(
        vimana_services::contract_section::extract(&written).unwrap(),
        Some(set.clone())
    );
    assert_eq!(std::fs::read(&pb).unwrap(), set);
}

#[test]
fn build_adder_no_contract_writes_the_bare_component() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("adder.wasm");
    let out = Command::new(env!("CARGO_BIN_EXE_build-adder"))
        .arg(&wasm)
        .arg("--no-contract")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&wasm).unwrap(), adder::component().unwrap());
}

#[test]
fn build_adder_defaults_to_target_adder_wasm() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_build-adder"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(dir.path().join("target/adder.wasm").is_file());
}

#[test]
fn build_adder_rejects_bad_arguments() {
    for args in [
        &["--nope"][..],
        &["a.wasm", "b.wasm"],
        &["--descriptor-set"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_build-adder"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("usage: build-adder"), "{stderr}");
    }
}
