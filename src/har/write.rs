//! Writing HAR 1.2: one exchange as one entry, and a file that is a complete
//! HAR document after every entry appended.
//!
//! The file always ends with the closing `\n]}}\n`; appending an entry
//! overwrites that tail with `,<entry>` followed by the tail again, so a
//! crash or kill loses at most the entry being written, and a full disk
//! none of what was written (see [`crate::output::file`]: the file is cut
//! back to its last entry and closed again). Redaction is the caller's
//! choice (a [`Redactor`], or none for `--show-secrets`).

use std::io;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, Version};
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;

use super::model::AuthlensMeta;
use super::redact::Redactor;
use crate::exchange::{CaptureState, CapturedBody, Exchange, FailureSide};
use crate::oauth::params::Params;
use crate::output::file::{DurableFile, Files, Unit};
use crate::output::notice::Notices;

/// A decoded body (gzip, br, zstd) is recorded up to the size that was
/// captured, or up to this when less was: a compression bomb cannot grow
/// the file, nor the memory writing it, beyond what the capture limit
/// allows. A body cut here is marked truncated.
const DECODE_CAP: usize = crate::exchange::DEFAULT_CAPTURE_LIMIT;
const TAIL: &[u8] = b"\n]}}\n";

/// A HAR file being written, valid after every [`HarWriter::append`].
pub struct HarWriter {
    file: DurableFile,
    entries: usize,
}

impl HarWriter {
    /// Creates (or truncates) `path` through `files` and writes an empty HAR
    /// document. Entries that cannot be written are told to `notices`.
    pub fn create(path: &Path, files: &Files, notices: Option<Notices>) -> io::Result<HarWriter> {
        let head = head();
        let file = DurableFile::create(
            files,
            path,
            head.as_bytes(),
            TAIL,
            format!("--har {}", path.display()),
            Unit::ENTRY,
            notices,
        )?;
        Ok(HarWriter { file, entries: 0 })
    }

    /// Appends one entry; the file is a complete document again on return,
    /// with the entry or, when it could not be written (the error), without.
    pub fn append(&mut self, entry: &Value) -> io::Result<()> {
        let mut record = Vec::with_capacity(1024);
        record.extend_from_slice(if self.entries == 0 { b"\n" } else { b",\n" });
        serde_json::to_writer(&mut record, entry)?;
        self.file.append(&record)?;
        self.entries += 1;
        Ok(())
    }

    /// Closes the document if a failure left it open, syncs the file, and
    /// returns how many entries it holds.
    pub fn finish(self) -> io::Result<usize> {
        self.finish_with(None)
    }

    /// [`HarWriter::finish`], with `comment` as the log's `comment` when
    /// given (what the entries cannot say, such as exchanges left out after
    /// the last one).
    pub fn finish_with(mut self, comment: Option<&str>) -> io::Result<usize> {
        if let Some(comment) = comment {
            let tail = format!("\n],\"comment\":{}}}}}\n", Value::from(comment));
            self.file.end_with(tail.as_bytes());
        }
        self.file.finish()?;
        Ok(self.entries)
    }
}

/// A file's text up to its first entry.
fn head() -> String {
    format!(
        "{{\"log\":{{\"version\":\"1.2\",\"creator\":{{\"name\":\"authlens\",\"version\":\"{}\",\"comment\":\"{}\"}},\"pages\":[],\"entries\":[",
        env!("CARGO_PKG_VERSION"),
        "unless recorded with --show-secrets, secrets are shown as fingerprints (kind#xxxxxx) and JWTs without their signature and personal claims (header.claims.)"
    )
}

/// A whole HAR document holding `entries`, as [`HarWriter`] would leave
/// the file (for a download made in memory).
pub fn document<'a>(entries: impl IntoIterator<Item = &'a Value>) -> Vec<u8> {
    let mut out = head().into_bytes();
    for (i, entry) in entries.into_iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        // A Value always serialises.
        let _ = serde_json::to_writer(&mut out, entry);
    }
    out.extend_from_slice(TAIL);
    out
}

/// The HAR entry for one exchange. With a redactor, every secret is replaced
/// by its fingerprint (see [`super::redact`]); without, it is kept as sent.
pub fn entry(exchange: &Exchange, mut redactor: Option<&mut Redactor>) -> Value {
    let r = &mut redactor;
    let req = &exchange.request;
    let url = apply(r, req.uri.to_string(), |red, url| red.url(url));
    let req_headers = header_list(&req.headers, r);
    let query: Vec<Value> = url
        .split('#')
        .next()
        .and_then(|u| u.split_once('?'))
        .map(|(_, q)| {
            Params::parse(q)
                .iter()
                .map(|p| json!({ "name": p.name, "value": p.value }))
                .collect()
        })
        .unwrap_or_default();
    let mut request = json!({
        "method": req.method.as_str(),
        "url": url,
        "httpVersion": http_version(req.version),
        "cookies": [],
        "headers": req_headers,
        "queryString": query,
        "headersSize": -1,
        "bodySize": body_size(&req.body),
    });
    let req_type = content_type(&req.headers);
    let mut req_state = req.body.state;
    if let Some((text, encoding, cut)) = body_text(&req.body, &req.headers) {
        if cut {
            req_state = CaptureState::Truncated;
        }
        let text = match encoding {
            None => apply(r, text, |red, text| red.body(req_type.as_deref(), text)),
            Some(_) => text,
        };
        // HAR 1.2 postData has no encoding member; binary bodies are rare in
        // sign-ins and are kept as the base64 text with authlens's marker.
        let mut post = json!({ "mimeType": req_type.clone().unwrap_or_default(), "text": text });
        if let Some(encoding) = encoding {
            post["encoding"] = json!(encoding);
        }
        request["postData"] = post;
    }

    let mut meta = AuthlensMeta {
        exchange: Some(exchange.id),
        request_body: Some(state_name(req_state).to_owned()),
        ..AuthlensMeta::default()
    };
    let response = match &exchange.response {
        Some(resp) => {
            meta.response_body = Some(state_name(resp.body.state).to_owned());
            meta.synthetic = resp.synthetic;
            let mime = content_type(&resp.headers);
            let mut content = json!({
                "size": resp.body.size,
                "mimeType": mime.clone().unwrap_or_else(|| "x-unknown".to_owned()),
            });
            if let Some((text, encoding, cut)) = body_text(&resp.body, &resp.headers) {
                let text = match encoding {
                    None => apply(r, text, |red, text| red.body(mime.as_deref(), text)),
                    Some(_) => text,
                };
                if cut {
                    meta.response_body = Some(state_name(CaptureState::Truncated).to_owned());
                } else if resp.body.is_complete() {
                    content["size"] = json!(decoded_len(&text, encoding));
                }
                content["text"] = json!(text);
                if let Some(encoding) = encoding {
                    content["encoding"] = json!(encoding);
                }
            }
            let location = resp
                .headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_default();
            let location = apply(r, location, |red, location| red.url(location));
            json!({
                "status": resp.status.as_u16(),
                "statusText": resp.status.canonical_reason().unwrap_or(""),
                "httpVersion": http_version(resp.version),
                "cookies": [],
                "headers": header_list(&resp.headers, r),
                "content": content,
                "redirectURL": location,
                "headersSize": -1,
                "bodySize": body_size(&resp.body),
            })
        }
        None => json!({
            "status": 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": { "size": 0, "mimeType": "x-unknown" },
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        }),
    };

    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let t = exchange.timings;
    let sent = t.request_done.map_or(0.0, ms);
    let head = t.response_head.map(ms);
    let done = t.response_done.map(ms).or(head);
    let wait = head.map_or(0.0, |h| (h - sent).max(0.0));
    let receive = match (head, done) {
        (Some(h), Some(d)) => (d - h).max(0.0),
        _ => 0.0,
    };
    let mut entry = json!({
        "startedDateTime": exchange.started_at.format(&Rfc3339).unwrap_or_default(),
        "time": done.unwrap_or(sent),
        "request": request,
        "response": response,
        "cache": {},
        "timings": {
            "blocked": -1, "dns": -1, "connect": -1, "ssl": -1,
            "send": sent, "wait": wait, "receive": receive,
        },
        "connection": exchange.connection.id.to_string(),
    });
    if let Some(error) = &exchange.error {
        meta.failed_side = Some(
            match error.side {
                FailureSide::Client => "client",
                FailureSide::Upstream => "upstream",
                FailureSide::Proxy => "proxy",
            }
            .to_owned(),
        );
        entry["_error"] = json!(error.message);
    }
    if let Some(done) = &exchange.intervention {
        meta.intervention = Some(super::model::intervention_name(done.kind).to_owned());
        meta.injected = Some(done.label.clone());
        meta.injected_note = Some(done.note.clone());
        entry["comment"] = json!(format!(
            "authlens changed this exchange on purpose (--fault {}): {}",
            done.label, done.note
        ));
    }
    entry["_authlens"] = serde_json::to_value(&meta).unwrap_or(Value::Null);
    if let Some(red) = redactor {
        // Last, so every secret this entry taught is known: binary bodies
        // (kept as base64), then every string.
        for body in ["/request/postData", "/response/content"] {
            if let Some(body) = entry.pointer_mut(body) {
                net_binary(red, body);
            }
        }
        red.net_value(&mut entry);
    }
    entry
}

/// A body kept as base64 (not UTF-8) with the secrets in its bytes replaced.
fn net_binary(redactor: &mut Redactor, body: &mut Value) {
    if body["encoding"] != "base64" {
        return;
    }
    let Some(bytes) = body["text"].as_str().and_then(|t| STANDARD.decode(t).ok()) else {
        return;
    };
    body["text"] = json!(STANDARD.encode(redactor.net_bytes(bytes)));
}

/// `text` through `f` when redacting, else unchanged.
fn apply(
    redactor: &mut Option<&mut Redactor>,
    text: String,
    f: impl FnOnce(&mut Redactor, &str) -> String,
) -> String {
    match redactor.as_deref_mut() {
        Some(red) => f(red, &text),
        None => text,
    }
}

fn header_list(headers: &HeaderMap, r: &mut Option<&mut Redactor>) -> Vec<Value> {
    headers
        .iter()
        .map(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let text = apply(r, text, |red, text| red.header(name.as_str(), text));
            let mut item = Map::new();
            item.insert("name".into(), json!(name.as_str()));
            item.insert("value".into(), json!(text));
            Value::Object(item)
        })
        .collect()
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The body as HAR text (content coding undone, at most [`DECODE_CAP`] or
/// the captured size): UTF-8 as is, anything else base64 (`Some("base64")`),
/// and whether decoding was cut there. `None` when nothing was captured.
fn body_text(
    body: &CapturedBody,
    headers: &HeaderMap,
) -> Option<(String, Option<&'static str>, bool)> {
    if body.state == CaptureState::NotCaptured || (body.bytes.is_empty() && body.size > 0) {
        return None;
    }
    if body.bytes.is_empty() {
        return None;
    }
    let cap = DECODE_CAP.max(body.bytes.len());
    let mut decoded = crate::decode::decoded_body(body, headers, cap + 1)
        .map(|b| b.into_owned())
        .unwrap_or_else(|_| body.bytes.to_vec());
    let cut = decoded.len() > cap;
    if cut {
        decoded.truncate(cap);
        // Whole characters only: a cut one would turn the text to base64.
        if let Err(e) = std::str::from_utf8(&decoded)
            && e.error_len().is_none()
        {
            decoded.truncate(e.valid_up_to());
        }
    }
    Some(match String::from_utf8(decoded) {
        Ok(text) => (text, None, cut),
        Err(e) => (STANDARD.encode(e.into_bytes()), Some("base64"), cut),
    })
}

fn decoded_len(text: &str, encoding: Option<&str>) -> usize {
    match encoding {
        Some(_) => STANDARD.decode(text).map_or(text.len(), |b| b.len()),
        None => text.len(),
    }
}

fn body_size(body: &CapturedBody) -> i64 {
    i64::try_from(body.size).unwrap_or(i64::MAX)
}

fn state_name(state: CaptureState) -> &'static str {
    match state {
        CaptureState::Complete => "complete",
        CaptureState::Truncated => "truncated",
        CaptureState::Aborted => "aborted",
        CaptureState::NotCaptured => "not-captured",
    }
}

fn http_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

#[cfg(test)]
mod tests;
