//! The record layout of each message: WIT field names in declaration order,
//! presence, oneofs; enum cases. Built once per contract and shared.

use std::collections::HashMap;

use prost_reflect::{
    Cardinality, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, OneofDescriptor,
};

use crate::MapError;
use crate::naming::to_kebab;

/// One field of the record a message maps to.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    /// A plain field: `T`, `option<T>` (explicit presence), `list<T>` or
    /// `list<tuple<K, V>>`.
    Field {
        name: String,
        field: FieldDescriptor,
        optional: bool,
    },
    /// A oneof: `option<variant>` whose cases are the oneof's fields.
    Oneof {
        name: String,
        oneof: OneofDescriptor,
        cases: Vec<(String, FieldDescriptor)>,
    },
}

/// The record layout of one message.
#[derive(Debug, Clone)]
pub(crate) struct MessageLayout {
    pub slots: Vec<Slot>,
    /// A message without fields reachable from this one (records cannot be
    /// empty in the component model).
    empty: Option<String>,
}

/// The cases of one enum: `(number, wit case)` in declaration order.
#[derive(Debug, Clone)]
pub(crate) struct EnumLayout {
    pub cases: Vec<(i32, String)>,
}

impl EnumLayout {
    /// The case of a number (the first one for aliases).
    pub fn case_of(&self, number: i32) -> Option<&str> {
        self.cases
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, c)| c.as_str())
    }

    /// The number of a case.
    pub fn number_of(&self, case: &str) -> Option<i32> {
        self.cases.iter().find(|(_, c)| c == case).map(|(n, _)| *n)
    }
}

/// Layouts of every message and enum reachable from supported methods.
#[derive(Debug, Default)]
pub(crate) struct Layouts {
    messages: HashMap<String, MessageLayout>,
    enums: HashMap<String, EnumLayout>,
}

/// The message or enum a field's values refer to (map values for maps).
pub(crate) fn value_kind(field: &FieldDescriptor) -> Kind {
    match field.kind() {
        Kind::Message(entry) if field.is_map() => entry.map_entry_value_field().kind(),
        kind => kind,
    }
}

impl Layouts {
    /// The layout of a message added before.
    pub fn message(&self, full_name: &str) -> Option<&MessageLayout> {
        self.messages.get(full_name)
    }

    /// The layout of an enum added before.
    pub fn enumeration(&self, full_name: &str) -> Option<&EnumLayout> {
        self.enums.get(full_name)
    }

    /// Adds a message and everything it references. Returns the name of an
    /// empty message reachable from it, if any.
    pub fn add(&mut self, desc: &MessageDescriptor) -> Result<Option<String>, MapError> {
        self.add_inner(desc, &mut Vec::new())
    }

    fn add_inner(
        &mut self,
        desc: &MessageDescriptor,
        stack: &mut Vec<String>,
    ) -> Result<Option<String>, MapError> {
        let full = desc.full_name().to_string();
        if let Some(done) = self.messages.get(&full) {
            return Ok(done.empty.clone());
        }
        if let Some(pos) = stack.iter().position(|m| *m == full) {
            let mut cycle = stack[pos..].to_vec();
            cycle.push(full);
            return Err(MapError::Recursive {
                cycle: cycle.join(" -> "),
            });
        }
        stack.push(full.clone());
        let slots = slots_of(desc)?;
        let mut empty = slots.is_empty().then(|| full.clone());
        for field in desc.fields() {
            match value_kind(&field) {
                Kind::Message(m) => {
                    let inner = self.add_inner(&m, stack)?;
                    empty = empty.or(inner);
                }
                Kind::Enum(e) => self.add_enum(&e)?,
                _ => {}
            }
        }
        stack.pop();
        self.messages.insert(
            full,
            MessageLayout {
                slots,
                empty: empty.clone(),
            },
        );
        Ok(empty)
    }

    fn add_enum(&mut self, desc: &EnumDescriptor) -> Result<(), MapError> {
        if self.enums.contains_key(desc.full_name()) {
            return Ok(());
        }
        let mut seen = Names::new(desc.full_name());
        let mut cases = Vec::new();
        for value in desc.values() {
            let case = to_kebab(value.name())?;
            seen.insert(&case, value.name())?;
            cases.push((value.number(), case));
        }
        self.enums
            .insert(desc.full_name().to_string(), EnumLayout { cases });
        Ok(())
    }
}

/// The slots of a message in declaration order; a oneof sits at the
/// position of its first field.
fn slots_of(desc: &MessageDescriptor) -> Result<Vec<Slot>, MapError> {
    let mut names = Names::new(desc.full_name());
    let mut slots = Vec::new();
    let mut oneofs_done: Vec<String> = Vec::new();
    for field in desc.fields() {
        let real_oneof = field.containing_oneof().filter(|o| !o.is_synthetic());
        if let Some(oneof) = real_oneof {
            if oneofs_done.iter().any(|o| o == oneof.full_name()) {
                continue;
            }
            oneofs_done.push(oneof.full_name().to_string());
            let name = to_kebab(oneof.name())?;
            names.insert(&name, oneof.name())?;
            let mut case_names = Names::new(oneof.full_name());
            let mut cases = Vec::new();
            for f in oneof.fields() {
                let case = to_kebab(f.name())?;
                case_names.insert(&case, f.name())?;
                cases.push((case, f));
            }
            slots.push(Slot::Oneof { name, oneof, cases });
            continue;
        }
        let name = to_kebab(field.name())?;
        names.insert(&name, field.name())?;
        let optional = field.supports_presence()
            && !field.is_list()
            && !field.is_map()
            && field.cardinality() != Cardinality::Required;
        slots.push(Slot::Field {
            name,
            field,
            optional,
        });
    }
    Ok(slots)
}

/// Collision detection for WIT names within one scope.
pub(crate) struct Names {
    scope: String,
    seen: HashMap<String, String>,
}

impl Names {
    /// An empty scope, named for error messages.
    pub fn new(scope: &str) -> Self {
        Self {
            scope: scope.to_string(),
            seen: HashMap::new(),
        }
    }

    /// Records `wit` for `proto`; errors if another name took it.
    pub fn insert(&mut self, wit: &str, proto: &str) -> Result<(), MapError> {
        match self.seen.get(wit) {
            Some(first) if first != proto => Err(MapError::NameCollision {
                scope: self.scope.clone(),
                wit: wit.to_string(),
                first: first.clone(),
                second: proto.to_string(),
            }),
            _ => {
                self.seen.insert(wit.to_string(), proto.to_string());
                Ok(())
            }
        }
    }
}
