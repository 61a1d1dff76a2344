#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End to end: `vimana apply` of api.vimana.host/v1alpha1 resources, the
//! daemon's Wasm runtime loading the adder component (local file with the
//! embedded contract, or an OCI reference in a real registry), and the
//! gateway answering the real Python grpcio client over TLS and h2c.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::SystemTime;

use adder::Behaviour;
use common::{gateway_env, line_value, python, python_ok};

const D1: &str = "00000000000000000000000000000001";
const ADDER_PROTO: &str = "examples/adder/adder.proto";

/// Writes the adder with behaviour `b` to `dir/name`, contract embedded
/// (what `vimana image embed` does) unless `contract` is false.
fn component(dir: &Path, name: &str, b: Behaviour, contract: bool) -> PathBuf {
    let mut wasm = adder::build(b).unwrap();
    if contract {
        wasm = vimana_services::contract_section::embed(&wasm, &adder::descriptor_set().unwrap())
            .unwrap();
    }
    let path = dir.join(name);
    std::fs::write(&path, wasm).unwrap();
    path
}

const VIMANA: &str = "apiVersion: api.vimana.host/v1alpha1
kind: Vimana
metadata:
  name: local
spec:
  regions: [local]
";

fn domain(name: &str, id: &str, aliases: &[&str]) -> String {
    format!(
        "---
apiVersion: api.vimana.host/v1alpha1
kind: Domain
metadata:
  name: {name}
spec:
  id: {id}
  vimana: local
  aliases: {aliases:?}
  grpc:
    reflection:
      allBut: []
  openApi: true
"
    )
}

fn server(name: &str, domain: &str, weights: &[(&str, u32)], deadline_ms: Option<u64>) -> String {
    let weights: Vec<String> = weights
        .iter()
        .map(|(v, w)| format!("\"{v}\": {w}"))
        .collect();
    let deadline = deadline_ms.map_or(String::new(), |d| format!("  deadlineMs: {d}\n"));
    format!(
        "---
apiVersion: api.vimana.host/v1alpha1
kind: Server
metadata:
  name: {name}
spec:
  id: adder
  domain: {domain}
  services: [foo.bar.AdderService]
  versionWeights: {{{}}}
{deadline}",
        weights.join(", ")
    )
}

/// A Component; `server` is the Server's `spec.id` (always `adder` here).
fn comp(name: &str, version: &str, server: &str, domain: &str, image: &str) -> String {
    format!(
        "---
apiVersion: api.vimana.host/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  version: {version}
  server: {server}
  domain: {domain}
  image: \"{image}\"
"
    )
}

/// The adder of examples/adder/adder.yaml (Domain D1, alias example.com,
/// openApi true) with its image at `image`.
fn adder_yaml(image: &str) -> String {
    format!(
        "{VIMANA}{}{}{}",
        domain("example", D1, &["example.com"]),
        server("adder", D1, &[("1.0.0", 1)], None),
        comp("adder-1.0.0", "1.0.0", "adder", D1, image)
    )
}

/// One AddFloats(3.5, -1.2) call with the stub-based grpcio client over TLS.
fn tls_call(tls: &str, host: &str, ca: &Path) -> String {
    python_ok(
        "adder_client.py",
        &[
            "call",
            "--target",
            tls,
            "--host",
            host,
            "--ca",
            ca.to_str().unwrap(),
        ],
    )
}

fn assert_adds(out: &str) {
    assert_eq!(line_value(out, "result"), "2.300000", "{out}");
}

/// The per-component counts of `adder_client.py --count N`.
fn counts(out: &str) -> BTreeMap<String, u64> {
    serde_json::from_str(line_value(out, "components")).unwrap()
}

/// A raw call with tests/py/adder_probe.py over h2c: (code, "details
/// [vimana-component]", result).
fn probe(h2c: &str, host: &str, extra: &[&str]) -> (String, String, String) {
    let (code, details, result, _) = probe_timed(h2c, host, extra);
    (code, details, result)
}

/// [`probe`] and the call's duration in ms as the client measured it.
fn probe_timed(h2c: &str, host: &str, extra: &[&str]) -> (String, String, String, u64) {
    let mut args = vec!["--target", h2c, "--host", host];
    args.extend_from_slice(extra);
    let out = python_ok("adder_probe.py", &args);
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_default()
            .to_owned()
    };
    let elapsed = get("elapsed_ms").parse().unwrap();
    (
        get("code"),
        get("details") + " [" + &get("component") + "]",
        get("result"),
        elapsed,
    )
}

fn canonical(id: &str) -> String {
    format!("{id}.vimana.local")
}

/// An HTTP/1.1 GET on the h2c listener with a Host header.
fn http_get(addr: &str, host: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut data = String::new();
    s.read_to_string(&mut data).unwrap();
    let (head, body) = data.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[test]
fn python_grpcio_over_tls_reflection_and_json() {
    let env = gateway_env("");
    let wasm = component(env.home(), "adder.wasm", Behaviour::Add, true);
    let applied = env.apply_yaml("adder.yaml", &adder_yaml(wasm.to_str().unwrap()));
    assert!(
        applied.contains("component/adder-1.0.0 created"),
        "{applied}"
    );
    let gw = env.gateway_addrs();
    let ca = env.ca_file();

    // TLS with SNI = the alias and = the canonical name, trusting only the CA.
    for host in ["example.com".to_owned(), canonical(D1)] {
        let out = tls_call(&gw.tls, &host, &ca);
        assert_adds(&out);
        assert_eq!(
            counts(&out),
            BTreeMap::from([(format!("{D1}:adder@1.0.0"), 1)]),
            "{host}: {out}"
        );
    }

    // gRPC reflection lists the service.
    let out = python_ok(
        "adder_client.py",
        &[
            "reflect",
            "--target",
            &gw.tls,
            "--host",
            "example.com",
            "--ca",
            ca.to_str().unwrap(),
        ],
    );
    assert!(
        out.lines().any(|l| l == "service foo.bar.AdderService"),
        "{out}"
    );

    // JSON transcoding (openApi: true) over HTTP/1.1 + TLS.
    let out = python_ok(
        "adder_client.py",
        &[
            "json",
            "--target",
            &gw.tls,
            "--host",
            "example.com",
            "--ca",
            ca.to_str().unwrap(),
        ],
    );
    assert!(line_value(&out, "status").contains(" 200"), "{out}");
    let answer: serde_json::Value = serde_json::from_str(line_value(&out, "json")).unwrap();
    assert_eq!(answer, serde_json::json!({"result": 2.3}));

    // The OpenAPI document of the domain.
    let (status, body) = http_get(&gw.h2c, "example.com", "/.well-known/schema.json");
    assert!(status.contains(" 200"), "{status}: {body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{doc}"
    );
    assert!(
        doc["paths"]
            .get("/foo.bar.AdderService/AddFloats")
            .is_some(),
        "{doc}"
    );

    // The Component is reported Available.
    let (status, reason, message) = env.available("components", "adder-1.0.0");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "Loaded"),
        "{message}"
    );
    let listed = env.json(&["get", "components"]);
    assert_eq!(
        listed[0]["status"]["conditions"][0]["status"], "True",
        "{listed}"
    );
}

#[test]
fn oci_push_then_deploy_by_reference() {
    let registry = common::Registry::start();
    let reference = format!("{}/{D1}/adder:1.0.0", registry.addr);

    // Without the insecure config, pushing to an http registry is refused
    // with a hint naming the setting.
    let strict = gateway_env("");
    let bare = component(strict.home(), "adder.wasm", Behaviour::Add, false);
    let proto = common::repo().join(ADDER_PROTO);
    let err = strict.fails(&[
        "image",
        "push",
        bare.to_str().unwrap(),
        "--proto",
        proto.to_str().unwrap(),
        &reference,
    ]);
    assert!(err.contains("insecure_registries"), "{err}");

    let env = gateway_env(&format!(
        "[images]\ninsecure_registries = [\"{}\"]\n",
        registry.addr
    ));
    let bare = component(env.home(), "adder.wasm", Behaviour::Add, false);
    let pushed = env.ok(&[
        "image",
        "push",
        bare.to_str().unwrap(),
        "--proto",
        proto.to_str().unwrap(),
        &reference,
    ]);
    assert!(pushed.contains("sha256:"), "{pushed}");
    // The local file stays bare: the contract travels as the OCI layer.
    std::fs::remove_file(&bare).unwrap();

    env.apply_yaml("adder.yaml", &adder_yaml(&reference));
    let (status, reason, message) = env.available("components", "adder-1.0.0");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "Loaded"),
        "{message}"
    );
    let gw = env.gateway_addrs();
    let out = tls_call(&gw.tls, "example.com", &env.ca_file());
    assert_adds(&out);
}

#[test]
fn weighted_split_and_live_weight_change() {
    let env = gateway_env("");
    let v1 = component(env.home(), "v1.wasm", Behaviour::Add, true);
    // Offset(0.0): other bytes (another digest), the same answer 2.3.
    let v2 = component(env.home(), "v2.wasm", Behaviour::Offset(0.0), true);
    let yaml = |w1: u32, w2: u32| {
        format!(
            "{VIMANA}{}{}{}{}",
            domain("example", D1, &["example.com"]),
            server("adder", D1, &[("1.0.0", w1), ("2.0.0", w2)], None),
            comp("adder-1.0.0", "1.0.0", "adder", D1, v1.to_str().unwrap()),
            comp("adder-2.0.0", "2.0.0", "adder", D1, v2.to_str().unwrap()),
        )
    };
    env.apply_yaml("split.yaml", &yaml(1, 3));
    let gw = env.gateway_addrs();
    let (c1, c2) = (format!("{D1}:adder@1.0.0"), format!("{D1}:adder@2.0.0"));

    let out = python_ok(
        "adder_client.py",
        &[
            "h2c-call",
            "--target",
            &gw.h2c,
            "--host",
            "example.com",
            "--count",
            "400",
        ],
    );
    assert_adds(&out);
    let seen = counts(&out);
    assert_eq!(seen.values().sum::<u64>(), 400, "{out}");
    assert_eq!(seen.len(), 2, "both versions answer: {out}");
    // Weights 1:3 → 2.0.0 gets p = 0.75. Over n = 400 independent picks the
    // share's sd is sqrt(p(1-p)/n) ≈ 2.2 points, so ±10 points is > 4.5 sd
    // (a false failure about once in 10^5 runs), while a broken split
    // (50/50, or all to one version) lands far outside.
    let share = seen[&c2] as f64 / 400.0 * 100.0;
    assert!(
        (65.0..=85.0).contains(&share),
        "2.0.0 share {share}%: {out}"
    );

    // Live change under load: the load runs until the stop file exists,
    // then makes 100 more calls; every call must succeed.
    let stop = env.home().join("stop-load");
    let mut load = python("adder_load.py")
        .args([
            "--target",
            &gw.h2c,
            "--host",
            "example.com",
            "--after",
            "100",
        ])
        .arg("--until")
        .arg(&stop)
        .arg("--max")
        .arg("600")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(load.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "started", "the load did not start");
    let applied = env.apply_yaml("switch.yaml", &yaml(0, 1));
    assert!(applied.contains("server/adder configured"), "{applied}");
    std::fs::write(&stop, "").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = load.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "a call of the load failed: {}\n{rest}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Calls made after the apply answered all went to 2.0.0.
    let after: BTreeMap<String, u64> = serde_json::from_str(line_value(&rest, "after")).unwrap();
    assert_eq!(after, BTreeMap::from([(c2.clone(), 100)]), "{rest}");
    let before: BTreeMap<String, u64> = serde_json::from_str(line_value(&rest, "before")).unwrap();
    assert!(before.values().sum::<u64>() >= 1, "{rest}");

    // And a fresh client sees only 2.0.0 too.
    let out = python_ok(
        "adder_client.py",
        &[
            "h2c-call",
            "--target",
            &gw.h2c,
            "--host",
            "example.com",
            "--count",
            "50",
        ],
    );
    assert_eq!(counts(&out), BTreeMap::from([(c2, 50)]), "{out}");
    assert!(!out.contains(&c1), "{out}");
}

#[test]
fn faults_map_to_grpc_codes() {
    let env = gateway_env("");
    let dir = env.home();
    let fail_message = "adder is closed for maintenance";
    let cases = [
        ("02", "loop", Behaviour::Loop, Some(200)),
        ("03", "grow", Behaviour::GrowMemory, None),
        ("04", "trap", Behaviour::Trap, None),
        (
            "05",
            "fail",
            Behaviour::Fail {
                code: 9,
                message: "adder is closed for maintenance",
            },
            None,
        ),
    ];
    let good = component(dir, "good.wasm", Behaviour::Add, true);
    let mut yaml = format!(
        "{VIMANA}{}{}{}",
        domain("healthy", D1, &["example.com"]),
        server("adder", D1, &[("1.0.0", 1)], None),
        comp("adder-1.0.0", "1.0.0", "adder", D1, good.to_str().unwrap())
    );
    for (n, name, b, deadline) in cases {
        let id = format!("000000000000000000000000000000{n}");
        let wasm = component(dir, &format!("{name}.wasm"), b, true);
        yaml.push_str(&domain(name, &id, &[]));
        yaml.push_str(&server(
            &format!("{name}-server"),
            &id,
            &[("1.0.0", 1)],
            deadline,
        ));
        yaml.push_str(&comp(
            &format!("{name}-1.0.0"),
            "1.0.0",
            "adder",
            &id,
            wasm.to_str().unwrap(),
        ));
    }
    env.apply_yaml("faults.yaml", &yaml);
    let gw = env.gateway_addrs();
    let healthy = |after: &str| {
        let (code, details, result) = probe(&gw.h2c, "example.com", &[]);
        assert_eq!(
            (code.as_str(), result.as_str()),
            ("OK", "2.3"),
            "healthy domain after {after}: {details}"
        );
    };
    healthy("nothing");

    let host = |n: &str| canonical(&format!("000000000000000000000000000000{n}"));
    let expect = [
        ("02", "DEADLINE_EXCEEDED", ""),
        ("03", "RESOURCE_EXHAUSTED", ""),
        ("04", "INTERNAL", ""),
        ("05", "FAILED_PRECONDITION", fail_message),
    ];
    for (n, want, message) in expect {
        let (code, details, _, elapsed_ms) = probe_timed(&gw.h2c, &host(n), &[]);
        assert_eq!(code, want, "domain {n}: {details}");
        assert!(details.contains(message), "domain {n}: {details}");
        // The answer names the version that failed.
        assert!(
            details.ends_with(&format!("[000000000000000000000000000000{n}:adder@1.0.0]")),
            "domain {n}: {details}"
        );
        if n == "02" {
            // Stopped by the Server's deadlineMs (200), not by the default
            // deadline (1 s) nor the client's timeout (10 s).
            assert!(
                (150..900).contains(&elapsed_ms),
                "the loop was stopped after {elapsed_ms} ms"
            );
        }
        healthy(want);
    }

    // A request message over the 4 MiB limit.
    let big = (4 << 20) + 1;
    let (code, details, _) = probe(&gw.h2c, "example.com", &["--big", &big.to_string()]);
    assert_eq!(code, "RESOURCE_EXHAUSTED", "{details}");
    healthy("an oversized request");

    // Bytes that do not decode as AddFloatsRequest: field 1 (x, a double)
    // with 1 byte instead of 8.
    let (code, details, _) = probe(&gw.h2c, "example.com", &["--raw", "0901"]);
    assert_eq!(code, "INVALID_ARGUMENT", "{details}");
    assert!(details.contains("field x"), "the field is named: {details}");
    healthy("an undecodable request");

    // Unknown method and unknown service.
    for method in [
        "/foo.bar.AdderService/SubtractFloats",
        "/foo.bar.NoSuchService/AddFloats",
    ] {
        let (code, details, _) = probe(&gw.h2c, "example.com", &["--method", method]);
        assert_eq!(code, "UNIMPLEMENTED", "{method}: {details}");
        healthy(method);
    }
}

/// `.cwasm` files of VIMANA_HOME/compiled with their modification times.
fn compiled(home: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![home.join("compiled")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                dirs.push(e.path());
            } else if e.path().extension().is_some_and(|x| x == "cwasm") {
                out.insert(e.path(), meta.modified().unwrap());
            }
        }
    }
    out
}

#[test]
fn daemon_kill9_restart_serves_again_from_compile_cache() {
    let env = gateway_env("");
    let wasm = component(env.home(), "adder.wasm", Behaviour::Add, true);
    env.apply_yaml("adder.yaml", &adder_yaml(wasm.to_str().unwrap()));
    let ca = env.ca_file();
    let gw = env.gateway_addrs();
    assert_adds(&tls_call(&gw.tls, "example.com", &ca));
    let cache = compiled(env.home());
    assert_eq!(cache.len(), 1, "one compiled component: {cache:?}");

    let pid = env.daemon_pid().unwrap();
    env.kill_daemon();
    assert!(!common::alive(pid));
    // The dead daemon's addresses must not be mistaken for the new ones.
    std::fs::remove_file(env.home().join("gateway.json")).unwrap();

    // Any CLI call autostarts the daemon, which reconciles the persisted
    // resources (and binds the gateway) before it answers.
    let (status, reason, message) = env.available("components", "adder-1.0.0");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "Loaded"),
        "{message}"
    );
    assert_ne!(env.daemon_pid(), Some(pid));
    let new = env.gateway_addrs();
    assert_adds(&tls_call(&new.tls, "example.com", &ca));
    assert_eq!(
        compiled(env.home()),
        cache,
        "recompiled instead of using the cache"
    );
}

#[test]
fn bad_component_reports_unavailable() {
    let env = gateway_env("");
    let good = component(env.home(), "good.wasm", Behaviour::Add, true);
    let bare = component(env.home(), "bare.wasm", Behaviour::Add, false);
    let missing = env.home().join("missing.wasm");
    let (d2, d3) = (
        "00000000000000000000000000000002",
        "00000000000000000000000000000003",
    );
    let yaml = format!(
        "{VIMANA}{}{}{}{}{}{}{}{}{}",
        domain("example", D1, &["example.com"]),
        server("adder", D1, &[("1.0.0", 1)], None),
        comp("adder-1.0.0", "1.0.0", "adder", D1, good.to_str().unwrap()),
        domain("missing", d2, &[]),
        server("missing-server", d2, &[("1.0.0", 1)], None),
        comp(
            "missing-1.0.0",
            "1.0.0",
            "adder",
            d2,
            missing.to_str().unwrap()
        ),
        domain("bare", d3, &[]),
        server("bare-server", d3, &[("1.0.0", 1)], None),
        comp("bare-1.0.0", "1.0.0", "adder", d3, bare.to_str().unwrap()),
    );
    env.apply_yaml("bad.yaml", &yaml);

    let (status, reason, message) = env.available("components", "missing-1.0.0");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ImageUnavailable"),
        "{message}"
    );
    assert!(message.contains("missing.wasm"), "{message}");
    let (status, reason, message) = env.available("components", "bare-1.0.0");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "NoContract"),
        "{message}"
    );
    for s in ["missing-server", "bare-server"] {
        let (status, reason, message) = env.available("servers", s);
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "VersionsUnavailable"),
            "{s}: {message}"
        );
    }
    let (status, reason, message) = env.available("servers", "adder");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "Serving"),
        "{message}"
    );
    // The table output shows it too.
    let table = env.ok(&["get", "components"]);
    assert!(
        table.contains("ImageUnavailable") && table.contains("NoContract"),
        "{table}"
    );

    // The healthy domain keeps serving; the broken ones have no version:
    // UNAVAILABLE (clients retry it), with the Component's reason, not
    // UNIMPLEMENTED "unknown service".
    let gw = env.gateway_addrs();
    assert_adds(&tls_call(&gw.tls, "example.com", &env.ca_file()));
    for (d, reason, what) in [
        (d2, "ImageUnavailable", "missing.wasm"),
        (d3, "NoContract", "bare-1.0.0"),
    ] {
        let (code, details, _) = probe(&gw.h2c, &canonical(d), &[]);
        assert_eq!(code, "UNAVAILABLE", "{details}");
        assert!(
            details.contains("foo.bar.AdderService")
                && details.contains(reason)
                && details.contains(what),
            "{details}"
        );
    }
    // A service no Server declares is still UNIMPLEMENTED.
    let (code, details, _) = probe(
        &gw.h2c,
        &canonical(d2),
        &["--method", "/foo.bar.Nope/AddFloats"],
    );
    assert_eq!(code, "UNIMPLEMENTED", "{details}");
}

/// A relative `image:` is resolved against the resources file's directory
/// (like Compose and kustomize), not the directory `vimana apply` runs in.
#[test]
fn relative_image_resolves_against_the_file() {
    let env = gateway_env("");
    let files = env.home().join("project/deploy");
    std::fs::create_dir_all(&files).unwrap();
    let wasm = component(
        &env.home().join("project"),
        "adder.wasm",
        Behaviour::Add,
        true,
    );
    std::fs::write(files.join("adder.yaml"), adder_yaml("../adder.wasm")).unwrap();
    // Run from somewhere else entirely, naming the file by a relative path.
    let elsewhere = env.home().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = env
        .cmd(&["apply", "-f", "../project/deploy/adder.yaml"])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let c = env.json(&["get", "component", "adder-1.0.0"]);
    let c = if c.is_array() { c[0].clone() } else { c };
    assert_eq!(c["spec"]["image"], wasm.to_str().unwrap(), "{c}");
    let (status, reason, message) = env.available("components", "adder-1.0.0");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "Loaded"),
        "{message}"
    );
    let gw = env.gateway_addrs();
    assert_adds(&tls_call(&gw.tls, "example.com", &env.ca_file()));
}
