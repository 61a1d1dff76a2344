#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::json;

#[test]
fn adder_openapi_describes_the_post_route() {
    let doc = common::adder().openapi("Adder", &[]);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Adder");
    let op = &doc["paths"]["/foo.bar.AdderService/AddFloats"]["post"];
    assert_eq!(
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/foo.bar.AddFloatsRequest"
    );
    assert_eq!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/foo.bar.AddFloatsResponse"
    );
    assert_eq!(
        op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/vimana.grpc.Status"
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["foo.bar.AddFloatsRequest"]["properties"]["x"],
        json!({"type": "number", "format": "double"})
    );
    assert_eq!(
        schemas["vimana.grpc.Status"]["properties"]["code"]["enum"][3],
        "INVALID_ARGUMENT"
    );
}

#[test]
fn rich_openapi_follows_proto3_json() {
    let contract = common::contract(&["rich/rich.proto"]);
    let doc = contract.openapi("Rich", &["vimana.test.rich.RichService"]);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/vimana.test.rich.RichService/Echo"));
    assert!(paths.contains_key("/vimana.test.rich.RichService/List"));
    assert!(!paths.contains_key("/vimana.test.rich.RichService/Upload"));
    assert!(!paths.contains_key("/vimana.test.other.StampService/Now"));
    let list = &paths["/vimana.test.rich.RichService/List"]["post"]["responses"]["200"];
    assert_eq!(
        list["content"]["application/json"]["schema"]["type"],
        "array"
    );
    let schemas = &doc["components"]["schemas"];
    let props = &schemas["vimana.test.rich.Everything"]["properties"];
    assert_eq!(props["fInt64"]["type"], "string");
    assert_eq!(props["fUint64"]["type"], "string");
    assert_eq!(props["fBytes"]["contentEncoding"], "base64");
    assert_eq!(
        props["tags"]["items"]["$ref"],
        "#/components/schemas/vimana.test.rich.Tag"
    );
    assert_eq!(props["counts"]["additionalProperties"]["type"], "string");
    assert_eq!(
        props["color"]["$ref"],
        "#/components/schemas/vimana.test.rich.Color"
    );
    assert_eq!(schemas["vimana.test.rich.Color"]["enum"][1], "COLOR_RED");
    assert!(schemas["vimana.test.other.Stamp"].is_object());
}
