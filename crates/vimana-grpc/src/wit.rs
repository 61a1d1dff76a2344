//! WIT text of a contract: one package per proto package, one interface
//! per service, a world `services` exporting them all.

use std::collections::HashSet;

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};

use crate::contract::ServiceMap;
use crate::layout::{Layouts, Names, Slot};
use crate::naming::{escape, to_kebab, type_name, wit_package};
use crate::{Contract, MapError};

/// One type definition of an interface, rendered.
enum Def {
    Record(String, Vec<(String, String)>),
    Enum(String, Vec<String>),
    Variant(String, Vec<(String, String)>),
}

/// Collects the types one interface needs, named relative to `package`.
struct Types<'a> {
    layouts: &'a Layouts,
    package: String,
    seen: HashSet<String>,
    /// Function names of the interface; a type with such a name gets `-type`.
    reserved: HashSet<String>,
    names: Names,
    defs: Vec<Def>,
}

impl Types<'_> {
    /// The local name of a type, moved aside when a function has its name.
    fn local(&self, name: String) -> String {
        if self.reserved.contains(&name) {
            format!("{name}-type")
        } else {
            name
        }
    }

    fn message(&mut self, desc: &MessageDescriptor) -> Result<String, MapError> {
        let name = self.local(type_name(desc.full_name(), &self.package)?);
        if !self.seen.insert(desc.full_name().to_string()) {
            return Ok(name);
        }
        self.names.insert(&name, desc.full_name())?;
        let at = self.defs.len();
        self.defs.push(Def::Record(name.clone(), Vec::new()));
        let slots = self
            .layouts
            .message(desc.full_name())
            .map(|l| l.slots.clone())
            .unwrap_or_default();
        let mut fields = Vec::new();
        for slot in &slots {
            match slot {
                Slot::Field {
                    name: f,
                    field,
                    optional,
                } => fields.push((escape(f), self.field(field, *optional)?)),
                Slot::Oneof {
                    name: o,
                    oneof,
                    cases,
                } => {
                    let variant = self.local(format!("{name}-{o}"));
                    self.names.insert(&variant, oneof.full_name())?;
                    let mut rendered = Vec::new();
                    for (case, f) in cases {
                        rendered.push((escape(case), self.kind(&f.kind())?));
                    }
                    self.defs.push(Def::Variant(variant.clone(), rendered));
                    fields.push((escape(o), format!("option<{}>", escape(&variant))));
                }
            }
        }
        self.defs[at] = Def::Record(name.clone(), fields);
        Ok(name)
    }

    fn enumeration(&mut self, desc: &EnumDescriptor) -> Result<String, MapError> {
        let name = self.local(type_name(desc.full_name(), &self.package)?);
        if self.seen.insert(desc.full_name().to_string()) {
            self.names.insert(&name, desc.full_name())?;
            let cases = self
                .layouts
                .enumeration(desc.full_name())
                .map(|l| l.cases.iter().map(|(_, c)| escape(c)).collect())
                .unwrap_or_default();
            self.defs.push(Def::Enum(name.clone(), cases));
        }
        Ok(name)
    }

    fn kind(&mut self, kind: &Kind) -> Result<String, MapError> {
        Ok(match kind {
            Kind::Double => "f64".into(),
            Kind::Float => "f32".into(),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => "s32".into(),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => "s64".into(),
            Kind::Uint32 | Kind::Fixed32 => "u32".into(),
            Kind::Uint64 | Kind::Fixed64 => "u64".into(),
            Kind::Bool => "bool".into(),
            Kind::String => "string".into(),
            Kind::Bytes => "list<u8>".into(),
            Kind::Enum(e) => escape(&self.enumeration(e)?),
            Kind::Message(m) => escape(&self.message(m)?),
        })
    }

    fn field(&mut self, field: &FieldDescriptor, optional: bool) -> Result<String, MapError> {
        if let (true, Kind::Message(entry)) = (field.is_map(), field.kind()) {
            let k = self.kind(&entry.map_entry_key_field().kind())?;
            let v = self.kind(&entry.map_entry_value_field().kind())?;
            return Ok(format!("list<tuple<{k}, {v}>>"));
        }
        let ty = self.kind(&field.kind())?;
        Ok(if field.is_list() {
            format!("list<{ty}>")
        } else if optional {
            format!("option<{ty}>")
        } else {
            ty
        })
    }
}

fn render_def(def: &Def, ind: &str) -> String {
    let (keyword, name, lines): (&str, &str, Vec<String>) = match def {
        Def::Record(n, fields) => (
            "record",
            n,
            fields.iter().map(|(f, t)| format!("{f}: {t},")).collect(),
        ),
        Def::Enum(n, cases) => ("enum", n, cases.iter().map(|c| format!("{c},")).collect()),
        Def::Variant(n, cases) => (
            "variant",
            n,
            cases.iter().map(|(c, t)| format!("{c}({t}),")).collect(),
        ),
    };
    let mut out = format!("{ind}    {keyword} {} {{\n", escape(name));
    for line in lines {
        out.push_str(&format!("{ind}        {line}\n"));
    }
    out.push_str(&format!("{ind}    }}"));
    out
}

/// `ns:name` with each part escaped for WIT text.
fn escaped_package(package: &str) -> String {
    match package.split_once(':') {
        Some((ns, name)) => format!("{}:{}", escape(ns), escape(name)),
        None => escape(package),
    }
}

impl Contract {
    /// The WIT text of this contract. `sources` are the `.proto` files it
    /// came from, named in the header comment.
    pub fn wit(&self, sources: &[String]) -> Result<String, MapError> {
        let mut packages: Vec<(String, Vec<&ServiceMap>)> = Vec::new();
        for svc in &self.services {
            let package = svc.desc.package_name().to_string();
            match packages.iter_mut().find(|(p, _)| *p == package) {
                Some((_, list)) => list.push(svc),
                None => packages.push((package, vec![svc])),
            }
        }
        // The file named on the command line comes after its imports, so
        // the last service's package becomes the top-level package.
        if let Some(last) = self.services.last() {
            let top = last.desc.package_name();
            if let Some(pos) = packages.iter().position(|(p, _)| p == top) {
                let entry = packages.remove(pos);
                packages.insert(0, entry);
            }
        }
        let mut out = if sources.is_empty() {
            "// Generated by `vimana wit`\n".to_string()
        } else {
            format!(
                "// Generated by `vimana wit {}` from: {}\n",
                sources.join(" "),
                sources.join(", ")
            )
        };
        let top = match packages.first() {
            Some((p, _)) => wit_package(p)?,
            None => "grpc:default".to_string(),
        };
        out.push_str(&format!("package {};\n\n", escaped_package(&top)));
        let mut exports = Vec::new();
        let mut nested = String::new();
        for (i, (package, services)) in packages.iter().enumerate() {
            let wit_pkg = wit_package(package)?;
            let ind = if i == 0 { "" } else { "    " };
            let mut body = String::new();
            for svc in services {
                body.push_str(&self.interface(svc, package, ind)?);
                body.push_str("\n\n");
                let iface = escape(&svc.interface);
                exports.push(if i == 0 {
                    iface
                } else {
                    format!("{}/{iface}", escaped_package(&wit_pkg))
                });
            }
            if i == 0 {
                out.push_str(&body);
            } else {
                let body = body.trim_end();
                let pkg = escaped_package(&wit_pkg);
                nested.push_str(&format!("\npackage {pkg} {{\n{body}\n}}\n"));
            }
        }
        out.push_str("world services {\n");
        for export in exports {
            out.push_str(&format!("    export {export};\n"));
        }
        out.push_str("}\n");
        out.push_str(&nested);
        Ok(out)
    }

    fn interface(&self, svc: &ServiceMap, package: &str, ind: &str) -> Result<String, MapError> {
        let mut types = Types {
            layouts: &self.layouts,
            package: package.to_string(),
            seen: HashSet::new(),
            reserved: svc
                .methods
                .iter()
                .filter(|m| m.unsupported.is_none())
                .map(|m| m.func.clone())
                .collect(),
            names: Names::new(&format!("interface {}", svc.interface)),
            defs: Vec::new(),
        };
        let mut funcs = Vec::new();
        for m in &svc.methods {
            if let Some(reason) = &m.unsupported {
                funcs.push(format!("{ind}    // {}: skipped, {reason}", m.method));
                continue;
            }
            let req = escape(&types.message(&m.input)?);
            let resp = escape(&types.message(&m.output)?);
            let resp = if m.server_streaming {
                format!("list<{resp}>")
            } else {
                resp
            };
            funcs.push(func_line(ind, &escape(&m.func), &req, &resp));
        }
        let clash = types.defs.iter().any(|d| match d {
            Def::Record(n, _) | Def::Enum(n, _) | Def::Variant(n, _) => n == "status",
        });
        let (import, status) = if clash {
            ("status as grpc-status", "grpc-status")
        } else {
            ("status", "status")
        };
        let mut items = vec![format!(
            "{ind}    use vimana:grpc/types@0.1.0.{{{import}}};"
        )];
        items.extend(types.defs.iter().map(|d| render_def(d, ind)));
        items.extend(funcs.into_iter().map(|f| f.replace("{status}", status)));
        let name = escape(&to_kebab(svc.desc.name())?);
        Ok(format!(
            "{ind}interface {name} {{\n{}\n{ind}}}",
            items.join("\n\n")
        ))
    }
}

/// A function line; `{status}` is replaced once the status type's local
/// name is known.
fn func_line(ind: &str, func: &str, req: &str, resp: &str) -> String {
    format!("{ind}    {func}: func(request: {req}) -> result<{resp}, {{status}}>;")
}
