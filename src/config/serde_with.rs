//! Serde helpers for settings: durations as text ("500ms"), sizes as bytes
//! or text ("64MiB"), and lists given as TOML arrays or comma-separated
//! environment values.

/// Durations as human strings: "500ms", "30s".
pub(super) mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration like \"500ms\" or \"30s\": {e}"
            ))
        })
    }
}

/// Sizes in bytes: an integer (`67108864`), or a number with a unit
/// (`"64MiB"`, `"512 KiB"`, `"1GB"`); the environment's digits-only strings
/// are bytes. KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024.
pub(super) mod byte_size {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    const UNITS: [(&str, u64); 7] = [
        ("b", 1),
        ("kb", 1_000),
        ("kib", 1 << 10),
        ("mb", 1_000_000),
        ("mib", 1 << 20),
        ("gb", 1_000_000_000),
        ("gib", 1 << 30),
    ];

    /// Parses `"64MiB"`, `"64 MiB"`, `"65536"` (unit letters in any case).
    pub fn parse(text: &str) -> Result<u64, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("`{text}` is not a size like 67108864 or \"64MiB\""))?;
        let unit = unit.trim().to_ascii_lowercase();
        let scale = match unit.as_str() {
            "" => 1,
            u => UNITS
                .iter()
                .find(|(name, _)| *name == u)
                .map(|(_, s)| *s)
                .ok_or_else(|| {
                    format!("`{text}`: unknown unit (use B, KB, KiB, MB, MiB, GB or GiB)")
                })?,
        };
        number
            .checked_mul(scale)
            .ok_or_else(|| format!("`{text}` is too large"))
    }

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct Size;
        impl Visitor<'_> for Size {
            type Value = u64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of bytes, or a size like \"64MiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v).map_err(|_| E::custom(format!("{v}: a size cannot be negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
                parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(Size)
    }
}

/// Lists that the environment writes as comma-separated strings.
pub(super) mod list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }

    pub fn split(text: &str) -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    pub fn serialize<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(text) => split(&text),
            OneOrMany::Many(items) => items.into_iter().map(|s| s.trim().to_string()).collect(),
        })
    }
}

/// An optional duration ("24h"); absent: `None`.
pub(super) mod opt_duration {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

pub(super) mod opt_list {
    use serde::{Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        super::list::deserialize(d).map(Some)
    }
}
