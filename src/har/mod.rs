//! HAR 1.2 files (HTTP Archive): reading them into exchanges so the analysis
//! runs on a browser's or another tool's recording, and writing the proxy's
//! own session as one, with secrets redacted.
//!
//! Layout: [`model`] names the members read; [`read`] streams files into
//! [`crate::exchange::Exchange`] values and merges them by time; [`redact`]
//! replaces secrets with their fingerprints; [`write`] turns an exchange into
//! an entry and keeps a file valid after every entry; [`recorder`] is the
//! `--har` writer the session feeds with the proxy's exchanges. A pure input
//! and output format: the analysis of a recording runs through
//! `crate::session::Session::replay`, like live traffic. Nothing here knows
//! an OAuth rule.

pub mod model;
pub mod read;
pub mod recorder;
pub mod redact;
pub mod write;

pub use read::{ReadOptions, Recording, load};
pub use recorder::HarRecorder;
pub use write::HarWriter;

/// Why a HAR file could not be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum HarError {
    #[error("{path}: cannot read the file: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON ({detail})")]
    NotJson { path: String, detail: String },
    #[error(
        "{path}: this is a JSON lines file of authlens events (written with --json), not a HAR file; for a report from it: authlens report --from-json {path}"
    )]
    JsonLines { path: String },
    #[error(
        "{path}: the file ends early at line {line}, column {column}: it is truncated (an interrupted export or copy?)"
    )]
    Truncated {
        path: String,
        line: usize,
        column: usize,
    },
    #[error("{path}: not a HAR file: {detail}")]
    NotHar { path: String, detail: String },
    #[error("{path}: {}", version_message(.found.as_deref()))]
    Version { path: String, found: Option<String> },
    #[error("{path}: entry {index}: {problem}")]
    Entry {
        path: String,
        /// 1-based position in `log.entries`.
        index: usize,
        problem: String,
    },
}

fn version_message(found: Option<&str>) -> String {
    match found {
        Some(v) => format!("HAR version {v:?} is not supported (authlens reads HAR 1.2)"),
        None => "\"log\" has no \"version\" (authlens reads HAR 1.2)".to_owned(),
    }
}
