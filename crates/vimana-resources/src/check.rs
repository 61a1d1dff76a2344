//! Field rules of a single resource.

use crate::error::{Context, ResourceError, Rule};
use crate::types::{Component, Domain, Resource, Server, Vimana};

const EXAMPLE_DOMAIN_ID: &str = "00000000000000000000000000000001";

/// Checks every field rule of one resource.
pub(crate) fn check_resource(resource: &Resource) -> Result<(), ResourceError> {
    let cx = resource.context();
    check_name(&cx, &resource.metadata().name)?;
    match resource {
        Resource::Vimana(v) => check_vimana(&cx, v),
        Resource::Domain(d) => check_domain(&cx, d),
        Resource::Server(s) => check_server(&cx, s),
        Resource::Component(c) => check_component(&cx, c),
    }
}

fn check_name(cx: &Context, name: &str) -> Result<(), ResourceError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(is_dns_label)
        && !name.contains(char::is_uppercase);
    if ok {
        Ok(())
    } else {
        Err(ResourceError::invalid(
            cx,
            "metadata.name",
            Rule::Name,
            format!(
                "{name:?} must be lowercase letters, digits, '-' and '.', at most 253 characters, starting and ending with a letter or digit"
            ),
            "rename it, e.g. `example` or `adder-1.0.0`",
        ))
    }
}

fn check_vimana(cx: &Context, v: &Vimana) -> Result<(), ResourceError> {
    for (i, region) in v.spec.regions.iter().enumerate() {
        if region.trim().is_empty() {
            return Err(ResourceError::invalid(
                cx,
                format!("spec.regions[{i}]"),
                Rule::Required,
                "must not be empty",
                "name the region, e.g. `eu-west-1`, or remove the entry",
            ));
        }
    }
    check_hostname(
        cx,
        "spec.canonicalSuperdomain",
        &v.spec.canonical_superdomain,
    )
}

fn check_domain(cx: &Context, d: &Domain) -> Result<(), ResourceError> {
    let id = &d.spec.id;
    if !is_domain_id(id) {
        return Err(ResourceError::invalid(
            cx,
            "spec.id",
            Rule::DomainId,
            format!("{id:?} must be exactly 32 lowercase hex digits, e.g. {EXAMPLE_DOMAIN_ID}"),
            format!(
                "use a 128-bit id written as 32 lowercase hex digits, e.g. {EXAMPLE_DOMAIN_ID}"
            ),
        ));
    }
    check_required(
        cx,
        "spec.vimana",
        &d.spec.vimana,
        "the metadata.name of a Vimana",
    )?;
    for (i, alias) in d.spec.aliases.iter().enumerate() {
        check_hostname(cx, &format!("spec.aliases[{i}]"), alias)?;
    }
    let reflection = &d.spec.grpc.reflection;
    if reflection.none_but.is_some() && reflection.all_but.is_some() {
        return Err(ResourceError::invalid(
            cx,
            "spec.grpc.reflection",
            Rule::Reflection,
            "sets both noneBut and allBut, which are mutually exclusive",
            "keep noneBut (reflect only the listed services) or allBut (reflect all but the listed services), not both",
        ));
    }
    for (list, field) in [
        (&reflection.none_but, "noneBut"),
        (&reflection.all_but, "allBut"),
    ] {
        for (i, svc) in list.iter().flatten().enumerate() {
            check_service(cx, &format!("spec.grpc.reflection.{field}[{i}]"), svc)?;
        }
    }
    if let Some(tls) = &d.spec.tls {
        check_required(
            cx,
            "spec.tls.certFile",
            &tls.cert_file,
            "a PEM certificate file",
        )?;
        check_required(
            cx,
            "spec.tls.keyFile",
            &tls.key_file,
            "a PEM private key file",
        )?;
    }
    Ok(())
}

fn check_server(cx: &Context, s: &Server) -> Result<(), ResourceError> {
    let id = &s.spec.id;
    if !is_server_id(id) {
        return Err(ResourceError::invalid(
            cx,
            "spec.id",
            Rule::ServerId,
            format!(
                "{id:?} must match ^[a-z](?:[0-9a-z-]{{0,61}}[0-9a-z])?$ (a lowercase letter, then up to 62 lowercase letters, digits or '-', not ending with '-')"
            ),
            "use a short lowercase DNS label, e.g. `adder`",
        ));
    }
    check_domain_ref(cx, "spec.domain", &s.spec.domain)?;
    for (i, svc) in s.spec.services.iter().enumerate() {
        check_service(cx, &format!("spec.services[{i}]"), svc)?;
    }
    for version in s.spec.version_weights.keys() {
        check_semver(cx, &format!("spec.versionWeights[{version:?}]"), version)?;
    }
    if s.spec.deadline_ms == Some(0) {
        return Err(ResourceError::invalid(
            cx,
            "spec.deadlineMs",
            Rule::Deadline,
            "0 must be positive",
            "give a deadline in milliseconds, e.g. 5000, or remove the field for no deadline",
        ));
    }
    Ok(())
}

fn check_component(cx: &Context, c: &Component) -> Result<(), ResourceError> {
    check_semver(cx, "spec.version", &c.spec.version)?;
    let server = &c.spec.server;
    if !is_server_id(server) {
        return Err(ResourceError::invalid(
            cx,
            "spec.server",
            Rule::ServerId,
            format!("{server:?} is not a valid Server id (^[a-z](?:[0-9a-z-]{{0,61}}[0-9a-z])?$)"),
            "use the spec.id of the Server this Component implements, e.g. `adder`",
        ));
    }
    check_domain_ref(cx, "spec.domain", &c.spec.domain)?;
    let image = &c.spec.image;
    if image.is_empty() || image.contains(char::is_whitespace) {
        return Err(ResourceError::invalid(
            cx,
            "spec.image",
            Rule::Image,
            format!("{image:?} must be a local .wasm path or an OCI reference, without spaces"),
            "use e.g. `./target/wasm32-wasip2/release/adder.wasm` or `ghcr.io/acme/adder:1.0.0`",
        ));
    }
    Ok(())
}

fn check_required(cx: &Context, field: &str, value: &str, what: &str) -> Result<(), ResourceError> {
    if value.trim().is_empty() {
        Err(ResourceError::invalid(
            cx,
            field,
            Rule::Required,
            "must not be empty",
            format!("set it to {what}"),
        ))
    } else {
        Ok(())
    }
}

fn check_domain_ref(cx: &Context, field: &str, id: &str) -> Result<(), ResourceError> {
    if is_domain_id(id) {
        Ok(())
    } else {
        Err(ResourceError::invalid(
            cx,
            field,
            Rule::DomainId,
            format!(
                "{id:?} must be a Domain id: exactly 32 lowercase hex digits, e.g. {EXAMPLE_DOMAIN_ID}"
            ),
            "use the spec.id of the Domain",
        ))
    }
}

fn check_hostname(cx: &Context, field: &str, host: &str) -> Result<(), ResourceError> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && !host.contains(char::is_uppercase)
        && host.split('.').all(is_dns_label);
    if ok {
        Ok(())
    } else {
        Err(ResourceError::invalid(
            cx,
            field,
            Rule::Hostname,
            format!(
                "{host:?} is not a valid hostname (lowercase DNS labels of 1-63 letters, digits or '-', separated by '.')"
            ),
            "use a hostname such as `adder.example.com`",
        ))
    }
}

fn check_service(cx: &Context, field: &str, svc: &str) -> Result<(), ResourceError> {
    let parts: Vec<&str> = svc.split('.').collect();
    let ok = parts.len() >= 2
        && parts.iter().all(|p| {
            let mut chars = p.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(ResourceError::invalid(
            cx,
            field,
            Rule::ServiceName,
            format!("{svc:?} is not a fully qualified gRPC service name (package.Service)"),
            "write the protobuf package and service, e.g. `foo.bar.AdderService`",
        ))
    }
}

fn check_semver(cx: &Context, field: &str, version: &str) -> Result<(), ResourceError> {
    let fail = |message: String, fix: &str| {
        Err(ResourceError::invalid(
            cx,
            field,
            Rule::Semver,
            message,
            fix.to_owned(),
        ))
    };
    if version.len() > 63 {
        return fail(
            format!(
                "{version:?} is {} characters long; versions are at most 63 characters",
                version.len()
            ),
            "shorten the pre-release part of the version",
        );
    }
    if let Some((_, build)) = version.split_once('+') {
        return fail(
            format!("{version:?} has build metadata \"+{build}\", which is not allowed"),
            "remove the `+...` suffix; use a pre-release (`-rc.1`) or a new patch version to tell builds apart",
        );
    }
    if !is_semver(version) {
        return fail(
            format!("{version:?} is not a semantic version MAJOR.MINOR.PATCH[-PRERELEASE]"),
            "use e.g. `1.0.0` or `1.1.0-rc.1` (no leading zeros, no `v` prefix)",
        );
    }
    Ok(())
}

/// Exactly 32 lowercase hex digits.
pub(crate) fn is_domain_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `^[a-z](?:[0-9a-z-]{0,61}[0-9a-z])?$`
pub(crate) fn is_server_id(id: &str) -> bool {
    let b = id.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= 63
                && first.is_ascii_lowercase()
                && (last.is_ascii_lowercase() || last.is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        }
        _ => false,
    }
}

/// RFC 1123 label (case is checked by the caller).
fn is_dns_label(label: &str) -> bool {
    let b = label.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        _ => false,
    }
}

/// SemVer 2.0.0 without build metadata.
fn is_semver(v: &str) -> bool {
    let (core, pre) = match v.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (v, None),
    };
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
        return false;
    }
    match pre {
        None => true,
        Some(pre) => pre.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (!id.bytes().all(|b| b.is_ascii_digit()) || numeric(id))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_grammar() {
        for ok in [
            "0.0.0",
            "1.0.0",
            "10.20.30",
            "1.0.0-rc.1",
            "1.0.0-alpha-1.0",
            "1.0.0-0a",
        ] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in [
            "1",
            "1.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0-01",
            "v1.0.0",
            "1.0.0-a..b",
            "1.0.x",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn server_ids() {
        assert!(is_server_id("a"));
        assert!(is_server_id("adder-2"));
        assert!(is_server_id(&format!("a{}", "b".repeat(62))));
        for bad in [
            "",
            "1a",
            "a-",
            "Adder",
            "a_b",
            &format!("a{}", "b".repeat(63)),
        ] {
            assert!(!is_server_id(bad), "{bad}");
        }
    }

    #[test]
    fn domain_ids() {
        assert!(is_domain_id(EXAMPLE_DOMAIN_ID));
        assert!(!is_domain_id("0000000000000000000000000000000A"));
        assert!(!is_domain_id("abc"));
    }
}
