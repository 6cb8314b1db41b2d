//! Strict YAML parsing with the offending field named once.

use serde::de::DeserializeOwned;

/// A YAML document that does not parse: the dotted field path and the reason.
pub(crate) struct YamlError {
    pub field: String,
    pub reason: String,
}

/// Parses `bytes`, tracking the path of the field at fault.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, YamlError> {
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
