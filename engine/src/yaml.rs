//! Strict YAML parsing with the offending field named once.

use serde::de::DeserializeOwned;

/// A YAML document that does not parse: the dotted field path and the reason.
pub struct YamlError {
    pub field: String,
    pub reason: String,
}

/// Parses `bytes`, tracking the path of the field at fault. A mapping that names a key twice is
/// refused at any depth (parameters and free-form values included), as in JSON
/// ([`crate::json`]): a reviewer reading the first spelling must see what the engine reads.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, YamlError> {
    check_unique_keys(bytes)?;
    let de = serde_yaml::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let reason = e.into_inner().to_string();
        // serde_yaml starts its message with the same path; keep it only once.
        let reason = reason
            .strip_prefix(&format!("{field}: "))
            .map(str::to_owned)
            .unwrap_or(reason);
        YamlError { field, reason }
    })
}

/// Refuses a YAML document whose mappings repeat a key, naming the key's path. A document that
/// does not parse at all is left to the typed read, which explains it.
pub fn check_unique_keys(bytes: &[u8]) -> Result<(), YamlError> {
    let de = serde_yaml::Deserializer::from_slice(bytes);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
    match crate::json::check_unique_keys(tracked) {
        Err(e) if e.to_string().contains("duplicate key `") => {
            let reason = e.to_string();
            let reason = reason
                .find("duplicate key `")
                .map_or(reason.as_str(), |i| &reason[i..])
                .to_owned();
            Err(YamlError {
                field: track.path().to_string(),
                reason,
            })
        }
        _ => Ok(()),
    }
}
