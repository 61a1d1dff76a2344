//! The published example and every rule, with its message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use vimana_resources::{
    ImageSource, Resource, ResourceError, ResourceKind, ResourceSet, Rule, component_name,
    parse_documents, validate,
};

const ADDER: &str = include_str!("../examples/adder.yaml");
const HDR: &str = "apiVersion: api.vimana.host/v1alpha1\n";

fn parse_err(text: &str) -> ResourceError {
    match parse_documents("deploy.yaml", text) {
        Ok(r) => panic!("expected an error, parsed {r:#?}"),
        Err(e) => e,
    }
}

/// The example with `from` replaced by `to`.
fn adder_with(from: &str, to: &str) -> String {
    assert!(ADDER.contains(from), "{from}");
    ADDER.replacen(from, to, 1)
}

fn applied_example() -> ResourceSet {
    let mut set = ResourceSet::new();
    set.apply(parse_documents("adder.yaml", ADDER).unwrap())
        .unwrap();
    set
}

#[test]
fn example_parses_and_applies() {
    let resources = parse_documents("adder.yaml", ADDER).unwrap();
    let kinds: Vec<_> = resources.iter().map(Resource::kind).collect();
    assert_eq!(
        kinds,
        [
            ResourceKind::Vimana,
            ResourceKind::Domain,
            ResourceKind::Server,
            ResourceKind::Component
        ]
    );
    let Resource::Vimana(v) = &resources[0] else {
        panic!()
    };
    assert_eq!(v.spec.canonical_superdomain, "vimana.local");
    let Resource::Domain(d) = &resources[1] else {
        panic!()
    };
    assert_eq!(d.spec.id, "00000000000000000000000000000001");
    assert_eq!(d.spec.aliases, ["example.com"]);
    assert!(d.spec.open_api);
    assert_eq!(d.spec.grpc.reflection.all_but, Some(vec![]));
    let Resource::Server(s) = &resources[2] else {
        panic!()
    };
    assert_eq!(s.spec.services, ["foo.bar.AdderService"]);
    assert_eq!(s.spec.version_weights.get("1.0.0"), Some(&1));
    let Resource::Component(c) = &resources[3] else {
        panic!()
    };
    assert_eq!(
        c.component_name(),
        "00000000000000000000000000000001:adder@1.0.0"
    );
    assert!(matches!(c.spec.image_source(), ImageSource::Path(_)));
    assert_eq!(c.origin.as_ref().map(|o| o.document), Some(4));

    validate(&resources, &ResourceSet::new()).unwrap();
    let mut set = ResourceSet::new();
    let outcome = set.apply(resources.clone()).unwrap();
    let created: Vec<String> = outcome.created.iter().map(ToString::to_string).collect();
    assert_eq!(
        created,
        [
            "Vimana/local",
            "Domain/example",
            "Server/adder",
            "Component/adder-1.0.0"
        ]
    );
    assert!(outcome.updated.is_empty() && outcome.unchanged.is_empty());
    assert_eq!(set.len(), 4);
    assert!(
        set.component(&component_name(
            "00000000000000000000000000000001",
            "adder",
            "1.0.0"
        ))
        .is_some()
    );

    // Re-applying the same documents changes nothing.
    let again = set.apply(resources).unwrap();
    assert!(again.created.is_empty() && again.updated.is_empty());
    assert_eq!(again.unchanged.len(), 4);

    // The set survives a JSON round trip (the daemon will persist it).
    let json = set.to_json().unwrap();
    assert_eq!(ResourceSet::from_json(&json).unwrap(), set);
}

#[test]
fn changed_weights_are_updated_and_new_version_created() {
    let mut set = applied_example();
    let text = format!(
        "{}---\n{HDR}kind: Component\nmetadata:\n  name: adder-2.0.0\nspec:\n  version: 2.0.0\n  server: adder\n  domain: 00000000000000000000000000000001\n  image: ghcr.io/acme/adder:2.0.0\n",
        adder_with("\"1.0.0\": 1", "\"1.0.0\": 1\n    \"2.0.0\": 3")
    );
    let outcome = set.apply(parse_documents("-", &text).unwrap()).unwrap();
    let names = |v: &[vimana_resources::ResourceRef]| -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    };
    assert_eq!(names(&outcome.created), ["Component/adder-2.0.0"]);
    assert_eq!(names(&outcome.updated), ["Server/adder"]);
    assert_eq!(outcome.unchanged.len(), 3);
}

#[test]
fn empty_documents_and_status_are_skipped() {
    let text = format!("---\n# nothing\n---\n{ADDER}\n---\n");
    let with_status = text.replacen(
        "kind: Vimana\n",
        "kind: Vimana\nstatus:\n  conditions:\n    - type: Ready\n      status: \"True\"\n",
        1,
    );
    let resources = parse_documents("-", &with_status).unwrap();
    assert_eq!(resources.len(), 4);
    let Resource::Vimana(v) = &resources[0] else {
        panic!()
    };
    assert!(v.status.is_none());
    // The empty documents count: the Vimana is the 2nd document.
    assert_eq!(
        v.origin.as_ref().map(|o| (o.file.as_str(), o.document)),
        Some(("-", 2))
    );
}

#[test]
fn bad_domain_id() {
    let e = parse_err(&adder_with(
        "id: 00000000000000000000000000000001",
        "id: abc",
    ));
    assert_eq!(
        e.to_string(),
        "deploy.yaml document 2 (Domain \"example\"): spec.id \"abc\" must be exactly 32 lowercase hex digits, e.g. 00000000000000000000000000000001"
    );
    assert_eq!(e.rule(), Rule::DomainId);
    assert_eq!(e.field(), Some("spec.id"));
    let upper = parse_err(&adder_with(
        "id: 00000000000000000000000000000001",
        "id: 0000000000000000000000000000000A",
    ));
    assert_eq!(upper.rule(), Rule::DomainId);
}

#[test]
fn bad_server_id() {
    let e = parse_err(&adder_with("id: adder", "id: Adder_1"));
    assert_eq!(
        e.to_string(),
        "deploy.yaml document 3 (Server \"adder\"): spec.id \"Adder_1\" must match ^[a-z](?:[0-9a-z-]{0,61}[0-9a-z])?$ (a lowercase letter, then up to 62 lowercase letters, digits or '-', not ending with '-')"
    );
    assert_eq!(e.rule(), Rule::ServerId);
    let trailing = parse_err(&adder_with("id: adder", "id: adder-"));
    assert_eq!(trailing.rule(), Rule::ServerId);
}

#[test]
fn semver_with_build_metadata() {
    let e = parse_err(&adder_with("version: 1.0.0", "version: 1.0.0+build.5"));
    assert_eq!(
        e.to_string(),
        "deploy.yaml document 4 (Component \"adder-1.0.0\"): spec.version \"1.0.0+build.5\" has build metadata \"+build.5\", which is not allowed"
    );
    assert_eq!(e.rule(), Rule::Semver);
    assert!(e.fix().contains("remove the `+...` suffix"));
}

#[test]
fn semver_longer_than_63() {
    let long = format!("1.0.0-{}", "a".repeat(58));
    assert_eq!(long.len(), 64);
    let e = parse_err(&adder_with("version: 1.0.0", &format!("version: {long}")));
    assert_eq!(
        e.to_string(),
        format!(
            "deploy.yaml document 4 (Component \"adder-1.0.0\"): spec.version {long:?} is 64 characters long; versions are at most 63 characters"
        )
    );
    // 63 characters is fine.
    let ok = format!("1.0.0-{}", "a".repeat(57));
    parse_documents(
        "x",
        &adder_with("version: 1.0.0", &format!("version: {ok}")),
    )
    .unwrap();
    // So is a weight key; a bad one is reported with its path.
    let e = parse_err(&adder_with("\"1.0.0\": 1", "\"1.0\": 1"));
    assert_eq!(e.field(), Some("spec.versionWeights[\"1.0\"]"));
}

#[test]
fn none_but_and_all_but_together() {
    let e = parse_err(&adder_with(
        "allBut: []",
        "allBut: [foo.bar.AdderService]\n      noneBut: [foo.bar.Other]",
    ));
    assert_eq!(
        e.to_string(),
        "deploy.yaml document 2 (Domain \"example\"): spec.grpc.reflection sets both noneBut and allBut, which are mutually exclusive"
    );
    assert_eq!(e.rule(), Rule::Reflection);
}

#[test]
fn unknown_field() {
    let e = parse_err(&adder_with("openApi: true", "openAPI: true"));
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "deploy.yaml document 2 (Domain \"example\"): spec: unknown field `openAPI`"
        ),
        "{msg}"
    );
    assert!(msg.contains("line 23 column 3"), "{msg}");
    assert_eq!(e.rule(), Rule::Schema);
    let ResourceError::Schema { position, .. } = e else {
        panic!()
    };
    assert_eq!(position, Some((23, 3)));

    let top = parse_err(&adder_with("kind: Vimana\n", "kind: Vimana\nextra: 1\n"));
    assert!(top.to_string().contains("unknown field `extra`"), "{top}");
}

#[test]
fn wrong_api_version_and_kind() {
    let e = parse_err(&adder_with(
        "api.vimana.host/v1alpha1",
        "api.vimana.host/v1",
    ));
    assert_eq!(
        e.to_string(),
        "deploy.yaml document 1 (Vimana \"local\"): apiVersion \"api.vimana.host/v1\" is not supported"
    );
    let e = parse_err(&adder_with("kind: Server", "kind: Servr"));
    assert_eq!(
        e.to_string(),
        "deploy.yaml document 3: kind \"Servr\" is not one of Vimana, Domain, Server, Component"
    );
}

#[test]
fn weight_key_without_component() {
    let text = adder_with("\"1.0.0\": 1", "\"1.0.0\": 1\n    \"2.0.0\": 1");
    let resources = parse_documents("deploy.yaml", &text).unwrap();
    let e = validate(&resources, &ResourceSet::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "deploy.yaml document 3 (Server \"adder\"): spec.versionWeights[\"2.0.0\"] names version 2.0.0, but there is no Component 00000000000000000000000000000001:adder@2.0.0"
    );
    assert_eq!(e.rule(), Rule::MissingComponent);
    assert_eq!(e.field(), Some("spec.versionWeights[\"2.0.0\"]"));
    // apply refuses too and stores nothing.
    let mut set = ResourceSet::new();
    assert!(set.apply(resources).is_err());
    assert!(set.is_empty());
}

#[test]
fn immutable_version_with_different_image() {
    let mut set = applied_example();
    let text = adder_with(
        "image: ./target/wasm32-wasip2/release/adder.wasm",
        "image: ghcr.io/acme/adder:1.0.0",
    );
    let resources = parse_documents("deploy.yaml", &text).unwrap();
    let e = set.apply(resources).unwrap_err();
    assert_eq!(
        e.to_string(),
        "deploy.yaml document 4 (Component \"adder-1.0.0\"): spec.image \"ghcr.io/acme/adder:1.0.0\" differs from \"./target/wasm32-wasip2/release/adder.wasm\", the image already applied for Component 00000000000000000000000000000001:adder@1.0.0 (versions are immutable)"
    );
    assert_eq!(e.rule(), Rule::ImmutableVersion);

    // Same version under another Component name is refused as well.
    let renamed = text.replacen("name: adder-1.0.0", "name: adder-again", 1);
    let e = set
        .apply(parse_documents("deploy.yaml", &renamed).unwrap())
        .unwrap_err();
    assert_eq!(e.rule(), Rule::ImmutableVersion);
}

#[test]
fn server_with_unknown_domain() {
    let text = adder_with(
        "  domain: 00000000000000000000000000000001\n  services",
        "  domain: 00000000000000000000000000000002\n  services",
    );
    let e = validate(
        &parse_documents("deploy.yaml", &text).unwrap(),
        &ResourceSet::new(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "deploy.yaml document 3 (Server \"adder\"): spec.domain \"00000000000000000000000000000002\" is not the spec.id of any Domain"
    );
    assert_eq!(e.rule(), Rule::UnknownReference);
    // The domain may come from what was applied before.
    let set = applied_example();
    let server_only: Vec<_> = parse_documents("deploy.yaml", ADDER)
        .unwrap()
        .into_iter()
        .filter(|r| r.kind() == ResourceKind::Server)
        .collect();
    validate(&server_only, &set).unwrap();
}

#[test]
fn duplicate_ids() {
    let other_domain = format!(
        "{ADDER}---\n{HDR}kind: Domain\nmetadata:\n  name: other\nspec:\n  id: 00000000000000000000000000000001\n  vimana: local\n"
    );
    let e = validate(
        &parse_documents("deploy.yaml", &other_domain).unwrap(),
        &ResourceSet::new(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "deploy.yaml document 5 (Domain \"other\"): spec.id \"00000000000000000000000000000001\" is already used by Domain \"example\""
    );
    assert_eq!(e.rule(), Rule::DuplicateId);

    // Against the applied set, too.
    let set = applied_example();
    let second_server = format!(
        "{HDR}kind: Server\nmetadata:\n  name: adder2\nspec:\n  id: adder\n  domain: 00000000000000000000000000000001\n"
    );
    let e = validate(&parse_documents("more.yaml", &second_server).unwrap(), &set).unwrap_err();
    assert_eq!(
        e.to_string(),
        "more.yaml document 1 (Server \"adder2\"): spec.id \"adder\" is already used by Server \"adder\""
    );

    let twice = format!("{ADDER}---\n{}", ADDER.split("---\n").nth(1).unwrap());
    let e = validate(
        &parse_documents("deploy.yaml", &twice).unwrap(),
        &ResourceSet::new(),
    )
    .unwrap_err();
    assert_eq!(e.rule(), Rule::DuplicateName);
    assert!(
        e.to_string().contains("(first in deploy.yaml document 2)"),
        "{e}"
    );
}

#[test]
fn yaml_syntax_error_with_line_and_column() {
    let text = adder_with("  openApi: true", "  openApi: [true");
    let e = parse_err(&text);
    let ResourceError::Syntax {
        file,
        document,
        line,
        column,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((file.as_str(), *document), ("deploy.yaml", 2));
    assert_eq!((*line, *column), (24, 1), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "deploy.yaml:{line}:{column}: YAML syntax error in document 2: "
        )),
        "{e}"
    );
    assert_eq!(e.rule(), Rule::Syntax);

    let tab = parse_err("apiVersion: x\nkind: [\n");
    let ResourceError::Syntax { line, .. } = tab else {
        panic!()
    };
    assert!(line >= 2);
}

#[test]
fn diagnostics_carry_code_and_help() {
    use miette::Diagnostic;
    let e = parse_err(&adder_with(
        "id: 00000000000000000000000000000001",
        "id: abc",
    ));
    assert_eq!(
        e.code().map(|c| c.to_string()).as_deref(),
        Some("vimana::resources::domain-id")
    );
    assert!(
        e.help()
            .is_some_and(|h| h.to_string().contains("32 lowercase hex"))
    );
}

#[test]
fn missing_field() {
    let e = parse_err(&adder_with("  vimana: local\n", ""));
    assert_eq!(
        e.to_string(),
        "deploy.yaml document 2 (Domain \"example\"): spec: missing field `vimana` at line 16 column 3"
    );
    assert_eq!(e.fix(), "add the missing field");
}
