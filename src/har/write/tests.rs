use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use time::macros::datetime;

use super::*;
use crate::exchange::{ConnectionInfo, RequestRecord, ResponseRecord, Timings};
use crate::har::read::{ReadOptions, read_from};

fn token_exchange() -> Exchange {
    let mut req_headers = HeaderMap::new();
    req_headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let mut resp_headers = HeaderMap::new();
    resp_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Exchange {
        id: 7,
        connection: Arc::new(ConnectionInfo {
            id: 3,
            ..ConnectionInfo::default()
        }),
        started_at: datetime!(2024-05-01 10:00:02.5 UTC),
        request: RequestRecord {
            method: Method::POST,
            uri: "https://login.microsoftonline.com/t/oauth2/v2.0/token"
                .parse()
                .unwrap(),
            version: Version::HTTP_11,
            headers: req_headers,
            body: CapturedBody::complete(
                "grant_type=authorization_code&code=the-code-123&client_secret=the-secret-1",
            ),
        },
        response: Some(ResponseRecord {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers: resp_headers,
            body: CapturedBody::complete(Bytes::from_static(
                br#"{"access_token":"the-access-token","token_type":"Bearer"}"#,
            )),
            synthetic: false,
        }),
        error: None,
        timings: Timings {
            request_done: Some(Duration::from_millis(2)),
            response_head: Some(Duration::from_millis(52)),
            response_done: Some(Duration::from_millis(60)),
        },
        intervention: None,
    }
}

#[test]
fn an_entry_has_every_required_har_member() {
    let e = entry(&token_exchange(), None);
    for key in [
        "startedDateTime",
        "time",
        "request",
        "response",
        "cache",
        "timings",
    ] {
        assert!(e.get(key).is_some(), "{key} missing");
    }
    for key in [
        "method",
        "url",
        "httpVersion",
        "cookies",
        "headers",
        "queryString",
        "headersSize",
        "bodySize",
    ] {
        assert!(e["request"].get(key).is_some(), "request.{key} missing");
    }
    for key in [
        "status",
        "statusText",
        "httpVersion",
        "cookies",
        "headers",
        "content",
        "redirectURL",
        "headersSize",
        "bodySize",
    ] {
        assert!(e["response"].get(key).is_some(), "response.{key} missing");
    }
    assert_eq!(e["startedDateTime"], "2024-05-01T10:00:02.5Z");
    assert_eq!(e["time"], 60.0);
    assert_eq!(e["timings"]["send"], 2.0);
    assert_eq!(e["timings"]["wait"], 50.0);
    assert_eq!(e["timings"]["receive"], 8.0);
    assert_eq!(e["response"]["content"]["mimeType"], "application/json");
    assert_eq!(e["_authlens"]["exchange"], 7);
    // Without a redactor everything is kept.
    assert!(e.to_string().contains("the-secret-1"));
}

#[test]
fn redacted_entries_keep_no_secret_and_read_back() {
    let mut redactor = Redactor::new();
    let e = entry(&token_exchange(), Some(&mut redactor));
    let text = e.to_string();
    for secret in ["the-code-123", "the-secret-1", "the-access-token"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let print = crate::oauth::fingerprint("code", "the-code-123");
    assert!(text.contains(&print.replace('#', "%23")), "{text}");

    let doc = format!(
        r#"{{"log":{{"version":"1.2","creator":{{"name":"authlens"}},"entries":[{text}]}}}}"#
    );
    let file = read_from(doc.as_bytes(), "t", ReadOptions::default()).unwrap();
    let back = &file.entries[0];
    assert_eq!(back.live_id, Some(7));
    let ex = &back.exchange;
    assert_eq!(ex.started_at, token_exchange().started_at);
    assert_eq!(ex.timings, token_exchange().timings);
    assert_eq!(
        ex.response.as_ref().unwrap().body.state,
        CaptureState::Complete
    );
}

#[test]
fn the_file_is_complete_after_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.har");
    let mut writer = HarWriter::create(&path, &Files::default(), None).unwrap();
    let read = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        read_from(&bytes[..], "s.har", ReadOptions::default()).map(|f| f.entries.len())
    };
    assert_eq!(read(&path).unwrap(), 0);
    for n in 1..=3 {
        writer.append(&entry(&token_exchange(), None)).unwrap();
        assert_eq!(read(&path).unwrap(), n);
    }
    assert_eq!(writer.finish().unwrap(), 3);
}

#[test]
fn an_exchange_without_response_is_written_like_devtools_does() {
    let mut ex = token_exchange();
    ex.response = None;
    ex.error = Some(crate::exchange::ExchangeError {
        side: FailureSide::Upstream,
        message: "cannot connect to idp:443".into(),
    });
    let e = entry(&ex, None);
    assert_eq!(e["response"]["status"], 0);
    assert_eq!(e["_error"], "cannot connect to idp:443");
    assert_eq!(e["_authlens"]["failedSide"], "upstream");
}

#[test]
fn a_binary_body_loses_the_secrets_its_entry_taught() {
    let mut exchange = token_exchange();
    let response = exchange.response.as_mut().unwrap();
    response.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    response.body = CapturedBody::complete(b"\xff\x00the-secret-1\xfe".to_vec());
    let mut redactor = Redactor::new();
    let e = entry(&exchange, Some(&mut redactor));
    let content = &e["response"]["content"];
    assert_eq!(content["encoding"], "base64");
    let body = STANDARD.decode(content["text"].as_str().unwrap()).unwrap();
    let print = crate::oauth::fingerprint("client_secret", "the-secret-1");
    assert_eq!(body, [b"\xff\x00", print.as_bytes(), b"\xfe"].concat());
    // No member was added on the way (no request postData without a body).
    exchange.request.body = CapturedBody::default();
    let bare = entry(&exchange, Some(&mut redactor));
    assert!(bare["request"].get("postData").is_none(), "{bare}");
}

#[test]
fn exchanges_left_out_are_said_in_the_next_entry_or_at_the_end_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gaps.har");
    let mut recorder = crate::har::HarRecorder::create(
        &path,
        &crate::output::file::Files::default(),
        crate::output::notice::Notices::default(),
        false,
    )
    .unwrap();
    recorder.gap(2);
    recorder.record(&token_exchange());
    recorder.gap(3);
    assert_eq!(recorder.finish().unwrap(), 1);
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let entry_comment = doc["log"]["entries"][0]["comment"].as_str().unwrap();
    assert!(
        entry_comment.contains("did not record 2 exchange(s) before this one"),
        "{entry_comment}"
    );
    let log_comment = doc["log"]["comment"].as_str().unwrap();
    assert!(
        log_comment.contains("did not record the last 3 exchange(s)"),
        "{log_comment}"
    );
}

#[test]
fn a_request_authlens_made_itself_is_redacted_even_with_show_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("made.har");
    let mut recorder = crate::har::HarRecorder::create(
        &path,
        &crate::output::file::Files::default(),
        crate::output::notice::Notices::default(),
        true,
    )
    .unwrap();
    let mut copy = token_exchange();
    copy.intervention = Some(crate::exchange::Intervention::new(
        crate::exchange::InterventionKind::Made,
        "reuse-code",
        "a copy redeemed first",
    ));
    recorder.record(&copy);
    // The app's own exchange keeps what --show-secrets asked for.
    recorder.record(&token_exchange());
    recorder.finish().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("the-access-token").count(), 1, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    let copied = doc["log"]["entries"][0].to_string();
    assert!(!copied.contains("the-access-token"), "{copied}");
}
