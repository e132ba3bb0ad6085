//! Persisted-operation manifests and operation-name lists.
//!
//! Accepted forms:
//! * Apollo's persisted query manifest: `{"format": "apollo-persisted-query-manifest",
//!   "operations": [{"id": "<sha256>", "name": "GetCourse", "type": "query", "body": "..."}]}`;
//! * a Relay-style map of hash to document: `{"<sha256>": "query GetCourse { ... }"}`;
//! * a JSON array of names, or a text file with one name per line (`#` starts a comment).

use std::path::Path;

use serde_json::Value;
use slogate_core::document::scan_document;
use slogate_core::request::is_graphql_name;
use slogate_core::OperationType;

/// One operation of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestOperation {
    /// Lowercase SHA-256 of the document, when the manifest gives it.
    pub hash: Option<String>,
    /// The operation name.
    pub name: String,
    /// The operation type.
    pub op_type: OperationType,
}

fn op_type(s: &str) -> Option<OperationType> {
    match s {
        "query" => Some(OperationType::Query),
        "mutation" => Some(OperationType::Mutation),
        "subscription" => Some(OperationType::Subscription),
        _ => None,
    }
}

fn check_hash(hash: &str, what: &str) -> Result<String, String> {
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hash.to_ascii_lowercase())
    } else {
        Err(format!("{what}: {hash:?} is not a SHA-256 hex digest"))
    }
}

/// Loads a manifest (Apollo or Relay form; see the module docs).
pub fn load_manifest(path: &Path) -> Result<Vec<ManifestOperation>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    if let Some(ops) = value.get("operations").and_then(Value::as_array) {
        return ops
            .iter()
            .enumerate()
            .map(|(i, op)| apollo_entry(i, op))
            .collect();
    }
    if let Some(map) = value.as_object() {
        return map
            .iter()
            .map(|(hash, doc)| relay_entry(hash, doc))
            .collect();
    }
    Err(format!(
        "{}: expected an Apollo persisted query manifest or a map of hash to document",
        path.display()
    ))
}

fn apollo_entry(i: usize, op: &Value) -> Result<ManifestOperation, String> {
    let field = |k: &str| op.get(k).and_then(Value::as_str);
    let name = field("name").ok_or_else(|| format!("operations[{i}]: missing \"name\""))?;
    if !is_graphql_name(name) {
        return Err(format!("operations[{i}]: {name:?} is not a GraphQL name"));
    }
    let ty = field("type").unwrap_or("query");
    let op_type = op_type(ty).ok_or_else(|| format!("operations[{i}]: unknown type {ty:?}"))?;
    let hash = match field("id") {
        Some(h) => Some(check_hash(h, &format!("operations[{i}].id"))?),
        None => None,
    };
    Ok(ManifestOperation {
        hash,
        name: name.to_string(),
        op_type,
    })
}

fn relay_entry(hash: &str, doc: &Value) -> Result<ManifestOperation, String> {
    let hash = check_hash(hash, "key")?;
    let text = doc
        .as_str()
        .ok_or_else(|| format!("{hash}: the value must be a GraphQL document"))?;
    let summary =
        scan_document(text).map_err(|e| format!("{hash}: not a valid document ({e:?})"))?;
    let op = summary
        .operations
        .first()
        .filter(|_| summary.operations.len() == 1)
        .ok_or_else(|| format!("{hash}: the document must define exactly one operation"))?;
    let name = op
        .name
        .as_deref()
        .ok_or_else(|| format!("{hash}: the operation has no name"))?;
    Ok(ManifestOperation {
        hash: Some(hash),
        name: name.to_string(),
        op_type: op.op_type,
    })
}

/// Loads a list of operation names: a manifest, a JSON array, or one name per line.
pub fn load_name_list(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let trimmed = text.trim_start();
    let names: Vec<String> = if trimmed.starts_with('{') {
        load_manifest(path)?.into_iter().map(|op| op.name).collect()
    } else if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<String>>(&text)
            .map_err(|e| format!("{}: expected a JSON array of names: {e}", path.display()))?
    } else {
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    if let Some(bad) = names.iter().find(|n| !is_graphql_name(n)) {
        return Err(format!(
            "{}: {bad:?} is not a GraphQL operation name",
            path.display()
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn apollo_and_relay_manifests() {
        let hash = "a".repeat(64);
        let f = write(&format!(
            r#"{{"format":"apollo-persisted-query-manifest","version":1,"operations":[{{"id":"{hash}","name":"GetCourse","type":"query","body":"query GetCourse {{ a }}"}},{{"name":"Save","type":"mutation","body":"mutation Save {{ s }}"}}]}}"#
        ));
        let ops = load_manifest(f.path()).unwrap();
        assert_eq!(ops[0].name, "GetCourse");
        assert_eq!(ops[0].hash.as_deref(), Some(hash.as_str()));
        assert_eq!(ops[1].op_type, OperationType::Mutation);
        let f = write(&format!(r#"{{"{hash}":"mutation Rename {{ r }}"}}"#));
        assert_eq!(load_manifest(f.path()).unwrap()[0].name, "Rename");
        let f = write(r#"{"nothex":"query A { a }"}"#);
        assert!(load_manifest(f.path()).unwrap_err().contains("SHA-256"));
    }

    #[test]
    fn name_lists() {
        let f = write("# allowed\nGetCourse\nSearch # inline\n\n");
        assert_eq!(
            load_name_list(f.path()).unwrap(),
            vec!["GetCourse", "Search"]
        );
        let f = write(r#"["A", "B"]"#);
        assert_eq!(load_name_list(f.path()).unwrap(), vec!["A", "B"]);
        let f = write("Good\nnot good\n");
        assert!(load_name_list(f.path()).unwrap_err().contains("not good"));
    }
}
