//! The duplicate-key walk, over any serde format (JSON text here, YAML in bundles and messages).

use super::strict::Repeated;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// Walks one document of any self-describing format and refuses an object (mapping) that names a
/// key twice; the error comes from inside the repeated key's value, so a path-tracking
/// deserializer names the key's own path.
pub fn check_unique_keys<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
    UniqueKeys.deserialize(deserializer)
}

/// Walks a JSON document, refusing an object that repeats a key. Builds nothing.
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// A key as the parser hands it: borrowed from the input unless it contained escapes.
/// `"a\u0063tion"` and `"action"` are the same key once unescaped, and compare equal here.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Below this many keys an object's keys are compared pairwise; above, through a sorted copy.
const LINEAR_KEYS: usize = 16;

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UniqueKeys)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: Vec<Key<'de>> = Vec::new();
        let mut sorted: Option<std::collections::BTreeSet<String>> = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let repeated = match &mut sorted {
                Some(set) => !set.insert(key.as_str().to_owned()),
                None => {
                    let repeated = keys.iter().any(|k| k.as_str() == key.as_str());
                    if keys.len() == LINEAR_KEYS {
                        let mut set: std::collections::BTreeSet<String> =
                            keys.drain(..).map(|k| k.as_str().to_owned()).collect();
                        set.insert(key.as_str().to_owned());
                        sorted = Some(set);
                    }
                    repeated
                }
            };
            if repeated {
                // Refused from inside the value, so that a path-tracking reader names the key.
                return map.next_value_seed(Repeated(key.as_str()));
            }
            map.next_value_seed(UniqueKeys)?;
            if sorted.is_none() {
                keys.push(key);
            }
        }
        Ok(())
    }
}
