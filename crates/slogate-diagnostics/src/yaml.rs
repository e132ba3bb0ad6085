//! Reading YAML files so that every mistake names its key.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::{FileError, Issue};

/// A YAML document that does not fit its structs: where and why.
pub type YamlError = Issue;

/// Reads a file for [`parse_yaml`] or [`yaml_documents`]: the file's name as the user gave
/// it, and its text; a file that cannot be read is a [`FileError`] (`cannot read: ...`).
pub fn read_file(path: &Path) -> Result<(String, String), FileError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((file, text)),
        Err(e) => Err(FileError::single(file, "", format!("cannot read: {e}"))),
    }
}

/// Parses one YAML document into `T`, naming the key of the first mistake. An empty
/// document (or one with only comments) reads as an empty mapping, so a struct whose
/// fields all have defaults gets its defaults.
pub fn parse_yaml<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, FileError> {
    let parsed = match serde_yaml_ng::from_str::<Value>(text) {
        Ok(Value::Null) => serde_path_to_error::deserialize(Value::Mapping(Default::default()))
            .map_err(|e| path_issue(&e)),
        Ok(_) => from_yaml(text),
        Err(e) => Err(Issue {
            key: String::new(),
            message: format!("not valid YAML: {e}"),
        }),
    };
    parsed.map_err(|issue| FileError {
        file: file.to_string(),
        issues: vec![issue],
    })
}

/// Every non-empty document of a (possibly multi-document) YAML file.
pub fn yaml_documents(file: &str, text: &str) -> Result<Vec<Value>, FileError> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc)
            .map_err(|e| FileError::single(file, "", format!("not valid YAML: {e}")))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Deserializes a YAML document, naming the key of the first mistake.
pub fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| path_issue(&e))
}

/// A `serde_path_to_error` failure as an issue: the key path (empty when the document
/// itself is wrong) and serde's message.
pub fn path_issue<E: std::fmt::Display>(err: &serde_path_to_error::Error<E>) -> Issue {
    let key = err.path().to_string();
    let key = if key == "." { String::new() } else { key };
    let message = err.inner().to_string();
    // serde_yaml prefixes its own (shorter) path; the key already says where.
    let message = match message.split_once(": ") {
        Some((prefix, rest)) if !prefix.contains(' ') && key.starts_with(prefix) => {
            rest.to_string()
        }
        _ => message,
    };
    Issue { key, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Doc {
        name: String,
        items: Vec<u32>,
    }

    #[test]
    fn an_empty_document_is_the_defaults() {
        for text in ["", "# nothing\n\n", "---\n"] {
            assert_eq!(parse_yaml::<Doc>("f", text).unwrap(), Doc::default());
        }
    }

    #[test]
    fn mistakes_name_the_file_and_the_key() {
        let e = parse_yaml::<Doc>("f.yaml", "items: [1, x]\n").unwrap_err();
        assert_eq!(e.issues[0].key, "items[1]");
        assert!(
            e.to_string().starts_with("f.yaml: items[1]: invalid type"),
            "{e}"
        );
        let e = parse_yaml::<Doc>("f.yaml", "nme: a\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("f.yaml: nme: unknown field `nme`"),
            "{e}"
        );
        let e = parse_yaml::<Doc>("f.yaml", "items: [1\n").unwrap_err();
        assert!(e.to_string().starts_with("f.yaml: not valid YAML: "), "{e}");
    }

    #[test]
    fn documents_skip_empty_ones() {
        let docs = yaml_documents("f", "a: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        let e = yaml_documents("f", "a: [\n").unwrap_err();
        assert!(e.to_string().starts_with("f: not valid YAML: "), "{e}");
    }

    #[test]
    fn unreadable_files_say_so() {
        let e = read_file(Path::new("/nonexistent/f.yaml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/f.yaml: cannot read: "),
            "{e}"
        );
    }
}
