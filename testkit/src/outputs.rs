//! Reading what a run wrote: the `--har` file and the `--json` lines.

use std::path::Path;

use serde_json::Value;

/// The HAR's entries; panics when the file is not one valid JSON document
/// (a missing file reads as empty, so that panics too).
pub fn har_entries(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the HAR is not valid JSON ({e}):\n{text}"));
    doc["log"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// How many entries the HAR at `path` holds, or why it cannot be read as
/// one JSON document (for polling a file being written).
pub fn har_entry_count(path: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(doc["log"]["entries"].as_array().map_or(0, Vec::len))
}

/// The JSON lines; panics on a line cut short (a missing file reads as none).
pub fn json_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the JSON lines end mid-line:\n{text}"
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a cut line ({e}): {l}")))
        .collect()
}

/// How many of the JSON lines in `text` are events of type `kind`.
pub fn events_of_type(text: &str, kind: &str) -> usize {
    let needle = format!("\"type\":\"{kind}\"");
    text.lines().filter(|l| l.contains(&needle)).count()
}
