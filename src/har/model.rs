//! The HAR 1.2 members authlens reads, as real tools write them.
//!
//! Deliberately lenient: every member is optional here (a missing one is
//! judged by the reader, which can say which entry lacks what), unknown and
//! `_`-prefixed vendor members are ignored, and numbers may be floats or
//! `null`. Only the few vendor members that carry meaning are named.

use serde::Deserialize;
use serde_json::Value;

/// One `log.entries[]` item.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawEntry {
    #[serde(rename = "startedDateTime")]
    pub started: Option<String>,
    /// Total time in ms (`-1` or absent when unknown).
    pub time: Option<f64>,
    pub request: Option<RawRequest>,
    pub response: Option<RawResponse>,
    pub timings: Option<RawTimings>,
    /// A connection id: a string in Chrome, sometimes a number elsewhere.
    pub connection: Option<Value>,
    /// Chrome's reason for a failed request (`net::ERR_…`).
    #[serde(rename = "_error")]
    pub error: Option<String>,
    /// What authlens wrote itself (see [`AuthlensMeta`]).
    #[serde(rename = "_authlens")]
    pub authlens: Option<AuthlensMeta>,
}

/// authlens's own vendor member on each entry it writes.
#[derive(Debug, Default, Deserialize, serde::Serialize, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct AuthlensMeta {
    /// The exchange id of the live run, so a re-analysis names the same ids.
    pub exchange: Option<u64>,
    /// `complete`, `truncated`, `aborted` or `not-captured`.
    #[serde(rename = "requestBody", skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    #[serde(rename = "responseBody", skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// Which side failed, when the exchange did not complete.
    #[serde(rename = "failedSide", skip_serializing_if = "Option::is_none")]
    pub failed_side: Option<String>,
    /// True when the proxy produced the response itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub synthetic: bool,
    /// What authlens did to the exchange on purpose (`--fault`): the kind
    /// (`rewritten`, `answered`, `held`, `dropped`, `made`), the fault's
    /// name and the note; the entry's `comment` says it for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intervention: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injected: Option<String>,
    #[serde(rename = "injectedNote", skip_serializing_if = "Option::is_none")]
    pub injected_note: Option<String>,
}

/// The HAR name of an intervention's kind, and back.
pub fn intervention_name(kind: crate::exchange::InterventionKind) -> &'static str {
    use crate::exchange::InterventionKind::*;
    match kind {
        Rewritten => "rewritten",
        Answered => "answered",
        Held => "held",
        Dropped => "dropped",
        Made => "made",
    }
}

pub fn intervention_kind(name: &str) -> Option<crate::exchange::InterventionKind> {
    use crate::exchange::InterventionKind::*;
    [Rewritten, Answered, Held, Dropped, Made]
        .into_iter()
        .find(|k| intervention_name(*k) == name)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawRequest {
    pub method: Option<String>,
    pub url: Option<String>,
    #[serde(rename = "httpVersion")]
    pub http_version: Option<String>,
    pub headers: Vec<NameValue>,
    #[serde(rename = "postData")]
    pub post_data: Option<RawPostData>,
    #[serde(rename = "bodySize")]
    pub body_size: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NameValue {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawPostData {
    #[serde(rename = "mimeType")]
    pub mime_type: Option<String>,
    pub text: Option<String>,
    pub params: Option<Vec<NameValue>>,
    /// Not in HAR 1.2, but some tools write binary bodies as base64 here too.
    pub encoding: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawResponse {
    pub status: Option<f64>,
    #[serde(rename = "httpVersion")]
    pub http_version: Option<String>,
    pub headers: Vec<NameValue>,
    pub content: Option<RawContent>,
    #[serde(rename = "redirectURL")]
    pub redirect_url: Option<String>,
    #[serde(rename = "_error")]
    pub error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawContent {
    /// Decoded body size in bytes (`-1` or absent when unknown).
    pub size: Option<f64>,
    #[serde(rename = "mimeType")]
    pub mime_type: Option<String>,
    pub text: Option<String>,
    /// `base64` when `text` holds the body base64-encoded.
    pub encoding: Option<String>,
}

/// Phases in ms; `-1` (or absent) means "does not apply".
#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(default)]
pub struct RawTimings {
    pub blocked: Option<f64>,
    pub dns: Option<f64>,
    pub connect: Option<f64>,
    pub send: Option<f64>,
    pub wait: Option<f64>,
    pub receive: Option<f64>,
}
