//! The serde shapes of `hac.toml`, exactly as written: every table denies
//! unknown keys, and every value that is checked later keeps its span.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

pub(crate) type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHac {
    pub provider: Option<Text>,
    pub spacecore: Option<RawSpacecore>,
    pub hardware: Option<Spanned<RawHardware>>,
    pub resources: Option<Spanned<RawResources>>,
    pub boot: Option<Spanned<RawBoot>>,
    pub commands: Option<BTreeMap<String, RawCommand>>,
    pub network: Option<Spanned<RawNetwork>>,
    #[serde(default)]
    pub volumes: Vec<Spanned<RawVolume>>,
}

/// `[spacecore]`: descriptive, kept as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpacecore {
    pub name: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub container_image: Option<String>,
    pub backend: Option<String>,
}

/// hypercore's `[hardware]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHardware {
    pub cores: Option<Spanned<i64>>,
    pub memory: Option<Spanned<SizeValue>>,
    pub kernel: Option<Text>,
    pub drive: Option<Text>,
    #[serde(rename = "ref")]
    pub reference: Option<Text>,
    pub interface: Option<Text>,
}

/// The vimana spacecore `[resources]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResources {
    pub cpu: Option<Spanned<i64>>,
    pub memory: Option<Spanned<SizeValue>>,
    pub disk: Option<Spanned<SizeValue>>,
}

/// vimana's `[boot]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBoot {
    pub kernel: Option<Text>,
    pub modules: Option<Text>,
    pub cmdline: Option<Vec<Text>>,
    pub drive: Option<Text>,
    #[serde(rename = "ref")]
    pub reference: Option<Text>,
}

/// vimana's `[network]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    pub mode: Option<Text>,
    pub forwards: Option<Spanned<Vec<Text>>>,
    pub address: Option<Text>,
    pub interface: Option<Text>,
}

/// One `[[volumes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVolume {
    pub source: Text,
    pub target: Text,
    #[serde(default)]
    pub read_only: bool,
}

/// A size: a bare integer (unit given by the key) or a string with a unit.
#[derive(Debug)]
pub(crate) enum SizeValue {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SizeValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of MiB or a size string like \"512MB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeValue, E> {
                Ok(SizeValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeValue, E> {
                Ok(SizeValue::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SizeValue, E> {
                Ok(SizeValue::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A `[commands]` entry: `name = "shell command"`, or the scaffold's
/// `name = { description = "...", run = "shell command" }`.
#[derive(Debug)]
pub(crate) struct RawCommand(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandTable {
    run: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

impl<'de> Deserialize<'de> for RawCommand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCommand;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a shell command string or a table with `run` and `description`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawCommand, E> {
                Ok(RawCommand(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawCommand, A::Error> {
                let t = CommandTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawCommand(t.run))
            }
        }
        d.deserialize_any(V)
    }
}
