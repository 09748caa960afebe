//! Reading HAR files into [`Exchange`] values.
//!
//! The file is streamed: serde walks `log.entries` one entry at a time and
//! each entry is turned into an exchange (bodies capped like the live proxy's
//! copies) before the next is read, so a 200 MB export never exists as one
//! JSON tree. Several files are merged by start time. Nothing here analyses
//! anything or prints, apart from the optional progress bar.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::HarError;
use super::model::{NameValue, RawContent, RawEntry, RawPostData, RawTimings};
use crate::exchange::{
    CaptureState, CapturedBody, ConnectionInfo, Exchange, ExchangeError, FailureSide, Intervention,
    RequestRecord, ResponseRecord, Timings,
};

/// How files are read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// At most this many bytes of each body are kept (like `--capture-limit`).
    pub capture_limit: usize,
    /// Draw a progress bar on stderr (only ever drawn on a terminal).
    pub progress: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            capture_limit: crate::exchange::DEFAULT_CAPTURE_LIMIT,
            progress: false,
        }
    }
}

/// The exchanges of one or more HAR files, in start order.
#[derive(Debug, Default)]
pub struct Recording {
    /// Ids are the live run's when one authlens file was read, else 1, 2, … in
    /// start order. Times are shown in the offset of the earliest entry.
    pub exchanges: Vec<Exchange>,
    /// Entries left out because they are not HTTP (`data:`, `blob:`, …).
    pub skipped: usize,
}

/// Reads and merges `paths` (in any order; entries are sorted by start time).
pub fn load(paths: &[PathBuf], options: ReadOptions) -> Result<Recording, HarError> {
    let mut all: Vec<(usize, Entry)> = Vec::new();
    let mut recording = Recording::default();
    for (file, path) in paths.iter().enumerate() {
        let read = read_file(path, options)?;
        recording.skipped += read.skipped;
        all.extend(read.entries.into_iter().map(|e| (file, e)));
    }
    // Stable: entries of one file that start together keep their order. A
    // request authlens held (`--fault`) counts from when it was sent on, as
    // the live analysis saw it.
    all.sort_by_key(|(file, e)| (e.exchange.sent_at(), *file));
    let keep_ids = paths.len() == 1 && {
        let mut ids: Vec<u64> = all.iter().filter_map(|(_, e)| e.live_id).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        n == all.len() && ids.len() == n
    };
    let offset = all.first().map(|(_, e)| e.exchange.started_at.offset());
    recording.exchanges = all
        .into_iter()
        .enumerate()
        .map(|(i, (_, e))| {
            let mut exchange = e.exchange;
            exchange.id = match e.live_id {
                Some(id) if keep_ids => id,
                _ => i as u64 + 1,
            };
            if let Some(offset) = offset {
                exchange.started_at = exchange.started_at.to_offset(offset);
            }
            exchange
        })
        .collect();
    Ok(recording)
}

/// One file, read.
#[derive(Debug)]
pub struct HarFile {
    pub creator: String,
    pub entries: Vec<Entry>,
    pub skipped: usize,
}

/// One entry as an exchange, with the live id authlens recorded, if any.
#[derive(Debug)]
pub struct Entry {
    pub exchange: Exchange,
    pub live_id: Option<u64>,
}

/// Reads one HAR file.
pub fn read_file(path: &Path, options: ReadOptions) -> Result<HarFile, HarError> {
    let source = path.display().to_string();
    let file = File::open(path).map_err(|e| HarError::Io {
        path: source.clone(),
        source: e,
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = options.progress.then(|| progress_bar(path, len));
    let reader: Box<dyn Read> = match &bar {
        Some(bar) => Box::new(bar.wrap_read(file)),
        None => Box::new(file),
    };
    let result = read_from(BufReader::with_capacity(1 << 16, reader), &source, options);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match result {
        Err(HarError::NotJson { .. } | HarError::NotHar { .. }) if is_json_lines(path) => {
            Err(HarError::JsonLines { path: source })
        }
        result => result,
    }
}

/// True when the file's first line is an authlens event as `--json` writes
/// it: someone gave `analyze` (or `report`) the JSON lines file instead of
/// a HAR file.
fn is_json_lines(path: &Path) -> bool {
    use std::io::BufRead as _;
    /// Far longer than any event line; a HAR file's first line can be
    /// the whole file.
    const FIRST_LINE_LIMIT: u64 = 1 << 20;
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut first = String::new();
    let mut lines = BufReader::new(file.take(FIRST_LINE_LIMIT));
    while first.trim().is_empty() {
        first.clear();
        match lines.read_line(&mut first) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
    crate::output::json_lines::from_line(first.trim()).is_ok()
}

fn progress_bar(path: &Path, len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    bar.set_message(format!("reading {name}"));
    bar
}

/// Reads a HAR document from any reader; `source` names it in errors.
pub fn read_from<R: Read>(
    reader: R,
    source: &str,
    options: ReadOptions,
) -> Result<HarFile, HarError> {
    let mut sink = Sink {
        limit: options.capture_limit,
        entries: Vec::new(),
        skipped: 0,
        seen: 0,
        problem: None,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = RootSeed { sink: &mut sink }.deserialize(&mut de);
    let parsed = parsed.and_then(|log| de.end().map(|()| log));
    if let Some((index, problem)) = sink.problem.take() {
        return Err(HarError::Entry {
            path: source.to_owned(),
            index,
            problem,
        });
    }
    let log = parsed.map_err(|e| HarError::from_json(source, &e))?;
    let Some(log) = log else {
        return Err(HarError::NotHar {
            path: source.to_owned(),
            detail: "there is no top-level \"log\" object".into(),
        });
    };
    match log.version.as_deref() {
        Some(v) if SUPPORTED_VERSIONS.contains(&v) => {}
        found => {
            return Err(HarError::Version {
                path: source.to_owned(),
                found: found.map(str::to_owned),
            });
        }
    }
    if !log.had_entries {
        return Err(HarError::NotHar {
            path: source.to_owned(),
            detail: "\"log\" has no \"entries\" array".into(),
        });
    }
    Ok(HarFile {
        creator: log.creator.unwrap_or_else(|| "unknown".into()),
        entries: sink.entries,
        skipped: sink.skipped,
    })
}

/// HAR 1.2 is what every tool writes; 1.1 has the same shape and the 1.3
/// draft only adds members.
const SUPPORTED_VERSIONS: [&str; 3] = ["1.1", "1.2", "1.3"];

// === streaming ===

/// Receives entries as serde reads them.
struct Sink {
    limit: usize,
    entries: Vec<Entry>,
    skipped: usize,
    seen: usize,
    /// The first entry that could not be used: (1-based index, why).
    problem: Option<(usize, String)>,
}

#[derive(Default)]
struct LogHead {
    version: Option<String>,
    creator: Option<String>,
    had_entries: bool,
}

struct RootSeed<'a> {
    sink: &'a mut Sink,
}

impl<'de> DeserializeSeed<'de> for RootSeed<'_> {
    type Value = Option<LogHead>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_> {
    type Value = Option<LogHead>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a HAR document (an object with a \"log\")")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut log = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "log" && log.is_none() {
                log = Some(map.next_value_seed(LogSeed {
                    sink: &mut *self.sink,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(log)
    }
}

struct LogSeed<'a> {
    sink: &'a mut Sink,
}

impl<'de> DeserializeSeed<'de> for LogSeed<'_> {
    type Value = LogHead;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LogSeed<'_> {
    type Value = LogHead;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the HAR \"log\" object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut head = LogHead::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => {
                    let v: serde_json::Value = map.next_value()?;
                    head.version = Some(match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    });
                }
                "creator" => {
                    let v: serde_json::Value = map.next_value()?;
                    head.creator = v["name"].as_str().map(|name| match v["version"].as_str() {
                        Some(version) if !version.is_empty() => format!("{name} {version}"),
                        _ => name.to_owned(),
                    });
                }
                "entries" if !head.had_entries => {
                    head.had_entries = true;
                    map.next_value_seed(EntriesSeed {
                        sink: &mut *self.sink,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(head)
    }
}

struct EntriesSeed<'a> {
    sink: &'a mut Sink,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of HAR entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<RawEntry>()? {
            self.sink.seen += 1;
            match to_exchange(raw, self.sink.limit) {
                Ok(Some(entry)) => self.sink.entries.push(entry),
                Ok(None) => self.sink.skipped += 1,
                Err(problem) => {
                    self.sink.problem = Some((self.sink.seen, problem));
                    return Err(de::Error::custom("unusable entry"));
                }
            }
        }
        Ok(())
    }
}

// === one entry ===

/// The exchange of one entry; `Ok(None)` for entries that are not HTTP.
fn to_exchange(raw: RawEntry, limit: usize) -> Result<Option<Entry>, String> {
    let request = raw.request.ok_or("it has no \"request\"")?;
    let url = request.url.as_deref().ok_or("its request has no \"url\"")?;
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https" | "ws" | "wss") {
        return Ok(None);
    }
    let what = format!(
        "{} {}",
        request.method.as_deref().unwrap_or("?"),
        crate::oauth::message::strip_query(url)
    );
    let started = raw.started.as_deref().ok_or_else(|| {
        format!("{what} has no \"startedDateTime\", so it cannot be put in time order")
    })?;
    let started_at = parse_time(started).ok_or_else(|| {
        format!("{what} has an unreadable \"startedDateTime\" {started:?} (expected ISO 8601, e.g. 2024-05-01T10:00:00.000+02:00)")
    })?;
    let uri = parse_uri(url).ok_or_else(|| format!("{what}: the URL cannot be parsed"))?;
    let method = request
        .method
        .as_deref()
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or_else(|| format!("{what} has no valid request \"method\""))?;
    let meta = raw.authlens.unwrap_or_default();

    let mut req_headers = headers(&request.headers);
    let mut req_body = request_body(request.post_data, request.body_size, limit);
    apply_state(&mut req_body, meta.request_body.as_deref());
    if req_body.state != CaptureState::NotCaptured {
        // HAR bodies are stored decoded.
        req_headers.remove(CONTENT_ENCODING);
    }

    let mut error = raw.error.or_else(|| {
        raw.response
            .as_ref()
            .and_then(|r| r.error.clone())
            .filter(|e| !e.is_empty())
    });
    let status = raw
        .response
        .as_ref()
        .and_then(|r| r.status)
        .filter(|s| *s >= 100.0 && *s < 1000.0)
        .and_then(|s| StatusCode::from_u16(s as u16).ok());
    let response = match (raw.response, status) {
        (Some(resp), Some(status)) => {
            let mut headers = headers(&resp.headers);
            let mut body = response_body(resp.content, limit);
            apply_state(&mut body, meta.response_body.as_deref());
            if body.state != CaptureState::NotCaptured {
                headers.remove(CONTENT_ENCODING);
            }
            if !headers.contains_key(LOCATION)
                && let Some(to) = resp.redirect_url.filter(|u| !u.is_empty())
                && let Ok(value) = HeaderValue::from_str(&to)
            {
                headers.insert(LOCATION, value);
            }
            Some(ResponseRecord {
                status,
                version: version(resp.http_version.as_deref()),
                headers,
                body,
                synthetic: meta.synthetic,
            })
        }
        _ => {
            error.get_or_insert_with(|| "no response was recorded".to_owned());
            None
        }
    };
    let error = error
        .filter(|e| !e.is_empty())
        .map(|message| ExchangeError {
            side: match meta.failed_side.as_deref() {
                Some("client") => FailureSide::Client,
                Some("proxy") => FailureSide::Proxy,
                _ => FailureSide::Upstream,
            },
            message,
        });
    let connection_id = match &raw.connection {
        Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0),
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    };
    let exchange = Exchange {
        id: 0,
        connection: Arc::new(ConnectionInfo {
            id: connection_id,
            ..ConnectionInfo::default()
        }),
        started_at,
        request: RequestRecord {
            method,
            uri,
            version: version(request.http_version.as_deref()),
            headers: req_headers,
            body: req_body,
        },
        response,
        error,
        timings: timings(raw.timings, raw.time),
        // A recording of a run with `--fault` keeps what was injected.
        intervention: meta
            .intervention
            .as_deref()
            .and_then(super::model::intervention_kind)
            .zip(meta.injected.clone())
            .map(|(kind, label)| {
                Intervention::new(kind, label, meta.injected_note.clone().unwrap_or_default())
            }),
    };
    Ok(Some(Entry {
        exchange,
        live_id: meta.exchange,
    }))
}

/// RFC 3339 first (what browsers write), then other ISO 8601 shapes; a time
/// without an offset is taken as UTC.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .ok()
        .or_else(|| {
            PrimitiveDateTime::parse(text, &Iso8601::DEFAULT)
                .ok()
                .map(PrimitiveDateTime::assume_utc)
        })
}

/// The URL as a URI: the fragment dropped (it is never sent), and characters
/// a URI cannot hold percent-encoded (tools record what the page wrote).
fn parse_uri(url: &str) -> Option<Uri> {
    let url = url.split('#').next().unwrap_or_default();
    if let Ok(uri) = url.parse::<Uri>() {
        return Some(uri);
    }
    let mut escaped = String::with_capacity(url.len() + 16);
    for b in url.bytes() {
        if b.is_ascii_graphic()
            && !matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
        {
            escaped.push(b as char);
        } else {
            escaped.push_str(&format!("%{b:02X}"));
        }
    }
    escaped.parse().ok()
}

fn version(text: Option<&str>) -> Version {
    match text.unwrap_or_default().to_ascii_lowercase().as_str() {
        "http/1.0" => Version::HTTP_10,
        "http/2" | "http/2.0" | "h2" | "h2c" => Version::HTTP_2,
        "http/3" | "http/3.0" | "h3" => Version::HTTP_3,
        "http/0.9" => Version::HTTP_09,
        _ => Version::HTTP_11,
    }
}

/// Headers that make a valid `HeaderMap`; HTTP/2 pseudo-headers (`:path`) and
/// anything unrepresentable are left out.
fn headers(list: &[NameValue]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for h in list {
        let (Some(name), Some(value)) = (h.name.as_deref(), h.value.as_deref()) else {
            continue;
        };
        if name.starts_with(':') {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// A body of `bytes` whose full size is `size` (when known), capped at `limit`.
fn captured(mut bytes: Vec<u8>, size: Option<u64>, limit: usize) -> CapturedBody {
    let size = size.unwrap_or(0).max(bytes.len() as u64);
    let state = if bytes.len() > limit {
        bytes.truncate(limit);
        CaptureState::Truncated
    } else if size > bytes.len() as u64 {
        CaptureState::Truncated
    } else {
        CaptureState::Complete
    };
    CapturedBody {
        bytes: Bytes::from(bytes),
        size,
        state,
    }
}

fn known_size(size: Option<f64>) -> Option<u64> {
    size.filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| s as u64)
}

fn request_body(post: Option<RawPostData>, body_size: Option<f64>, limit: usize) -> CapturedBody {
    let size = known_size(body_size);
    let Some(post) = post else {
        return match size {
            // No postData and nothing sent: an empty body, recorded as such.
            Some(0) => CapturedBody::complete(Bytes::new()),
            _ => not_captured(size),
        };
    };
    let bytes = match (post.text, post.params) {
        (Some(text), _) if !text.is_empty() || size == Some(0) => {
            decode_text(text, post.encoding.as_deref())
        }
        (_, Some(params)) if !params.is_empty() => {
            let mut form = String::new();
            for p in params {
                if !form.is_empty() {
                    form.push('&');
                }
                form.push_str(&crate::oauth::params::encode_component(
                    p.name.as_deref().unwrap_or_default(),
                ));
                form.push('=');
                form.push_str(&crate::oauth::params::encode_component(
                    p.value.as_deref().unwrap_or_default(),
                ));
            }
            form.into_bytes()
        }
        (Some(_), _) => Vec::new(),
        (None, _) => return not_captured(size),
    };
    if bytes.is_empty() && size.is_some_and(|s| s > 0) {
        return not_captured(size);
    }
    captured(bytes, size, limit)
}

fn response_body(content: Option<RawContent>, limit: usize) -> CapturedBody {
    let Some(content) = content else {
        return not_captured(None);
    };
    let size = known_size(content.size);
    match content.text {
        Some(text) if !text.is_empty() => {
            captured(decode_text(text, content.encoding.as_deref()), size, limit)
        }
        // An empty text stands for an empty body only when the size says so
        // (DevTools writes "" for bodies it did not keep).
        _ if size == Some(0) => CapturedBody::complete(Bytes::new()),
        _ => not_captured(size),
    }
}

fn not_captured(size: Option<u64>) -> CapturedBody {
    CapturedBody {
        bytes: Bytes::new(),
        size: size.unwrap_or(0),
        state: CaptureState::NotCaptured,
    }
}

/// `text` as bytes: base64-decoded when so marked (falling back to the text
/// itself when it is not valid base64).
fn decode_text(text: String, encoding: Option<&str>) -> Vec<u8> {
    if encoding.is_some_and(|e| e.eq_ignore_ascii_case("base64")) {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        if let Ok(bytes) = STANDARD.decode(compact.as_bytes()) {
            return bytes;
        }
    }
    text.into_bytes()
}

/// authlens's own record of how complete a body was wins over the guess.
fn apply_state(body: &mut CapturedBody, recorded: Option<&str>) {
    body.state = match recorded {
        Some("truncated") => CaptureState::Truncated,
        Some("aborted") => CaptureState::Aborted,
        Some("not-captured") => CaptureState::NotCaptured,
        Some("complete") => CaptureState::Complete,
        _ => return,
    };
}

/// HAR phases to offsets from the start: the request is sent after
/// blocked + dns + connect + send, its head comes `wait` later, the body
/// `receive` after that. Without phases only the total is known.
fn timings(t: Option<RawTimings>, total: Option<f64>) -> Timings {
    let ms = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0);
    // Whole nanoseconds, so what authlens wrote in ms reads back exactly.
    let dur = |v: f64| Duration::from_nanos((v * 1_000_000.0).round() as u64);
    let Some(t) = t.filter(|t| ms(t.send).is_some() || ms(t.wait).is_some()) else {
        return Timings {
            response_done: ms(total).map(dur),
            ..Timings::default()
        };
    };
    let sent = [t.blocked, t.dns, t.connect, t.send]
        .into_iter()
        .filter_map(ms)
        .sum::<f64>();
    let head = ms(t.wait).map(|w| sent + w);
    Timings {
        request_done: Some(dur(sent)),
        response_head: head.map(dur),
        response_done: head
            .map(|h| h + ms(t.receive).unwrap_or(0.0))
            .or(ms(total))
            .map(dur),
    }
}

impl HarError {
    fn from_json(path: &str, e: &serde_json::Error) -> HarError {
        use serde_json::error::Category;
        let path = path.to_owned();
        let (line, column) = (e.line(), e.column());
        match e.classify() {
            Category::Eof => HarError::Truncated { path, line, column },
            Category::Syntax => HarError::NotJson {
                path,
                detail: e.to_string(),
            },
            Category::Data => HarError::NotHar {
                path,
                detail: e.to_string(),
            },
            // A read that failed (a directory, a disk error) is not a JSON problem.
            Category::Io => HarError::Io {
                path,
                source: std::io::Error::other(e.to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests;
