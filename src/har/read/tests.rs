use super::*;

fn read(text: &str) -> Result<HarFile, HarError> {
    read_from(text.as_bytes(), "test.har", ReadOptions::default())
}

fn har(entries: &str) -> String {
    format!(
        r#"{{"log":{{"version":"1.2","creator":{{"name":"WebInspector","version":"537.36"}},"pages":[],"entries":[{entries}]}}}}"#
    )
}

const CHROME_TOKEN: &str = r#"{
  "_initiator": {"type": "script"}, "_priority": "High", "_resourceType": "fetch",
  "cache": {}, "connection": "4711", "pageref": "page_1",
  "request": {
    "method": "POST", "url": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    "httpVersion": "http/2.0",
    "headers": [{"name": ":authority", "value": "login.microsoftonline.com"},
                {"name": "content-type", "value": "application/x-www-form-urlencoded;charset=utf-8"},
                {"name": "origin", "value": "https://app.test"}],
    "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 55,
    "postData": {"mimeType": "application/x-www-form-urlencoded;charset=utf-8",
                 "text": "grant_type=authorization_code&code=abc&client_id=c1&x=1",
                 "params": [{"name": "grant_type", "value": "authorization_code"}]}
  },
  "response": {
    "status": 400, "statusText": "", "httpVersion": "http/2.0",
    "headers": [{"name": "content-type", "value": "application/json; charset=utf-8"},
                {"name": "content-encoding", "value": "gzip"}],
    "cookies": [],
    "content": {"size": 27, "mimeType": "application/json", "compression": -10,
                "text": "eyJlcnJvciI6ImludmFsaWRfZ3JhbnQifQ==", "encoding": "base64"},
    "redirectURL": "", "headersSize": -1, "bodySize": 0, "_transferSize": 900, "_error": null
  },
  "serverIPAddress": "20.190.151.68",
  "startedDateTime": "2024-05-01T12:00:02.500+02:00",
  "time": 120.5,
  "timings": {"blocked": 1.5, "dns": -1, "ssl": -1, "connect": -1, "send": 0.5, "wait": 100, "receive": 18.5, "_blocked_queueing": 1.2}
}"#;

#[test]
fn a_chrome_entry_becomes_an_exchange() {
    let file = read(&har(CHROME_TOKEN)).unwrap();
    assert_eq!(file.creator, "WebInspector 537.36");
    let ex = &file.entries[0].exchange;
    assert_eq!(ex.request.method, Method::POST);
    assert_eq!(ex.request.uri.host(), Some("login.microsoftonline.com"));
    assert_eq!(ex.request.version, Version::HTTP_2);
    assert!(ex.request.headers.get(":authority").is_none());
    assert_eq!(ex.request.headers["origin"], "https://app.test");
    assert_eq!(
        &ex.request.body.bytes[..],
        b"grant_type=authorization_code&code=abc&client_id=c1&x=1"
    );
    assert_eq!(ex.request.body.state, CaptureState::Complete);
    let resp = ex.response.as_ref().unwrap();
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    // base64 decoded; the coding header dropped because HAR text is decoded.
    assert_eq!(&resp.body.bytes[..], br#"{"error":"invalid_grant"}"#);
    assert!(resp.headers.get("content-encoding").is_none());
    assert_eq!(ex.connection.id, 4711);
    assert_eq!(ex.started_at.offset().whole_hours(), 2);
    assert_eq!(ex.timings.request_done, Some(Duration::from_micros(2000)));
    assert_eq!(
        ex.timings.response_head,
        Some(Duration::from_micros(102_000))
    );
    assert_eq!(
        ex.timings.response_done,
        Some(Duration::from_micros(120_500))
    );
    assert!(ex.error.is_none());
}

#[test]
fn params_stand_in_for_missing_text_and_missing_bodies_are_marked() {
    let entry = r#"{"startedDateTime":"2024-05-01T10:00:00Z","time":1,
        "request":{"method":"POST","url":"https://idp/token","httpVersion":"HTTP/1.1","headers":[],"queryString":[],"cookies":[],"headersSize":-1,"bodySize":40,
          "postData":{"mimeType":"application/x-www-form-urlencoded","params":[{"name":"grant_type","value":"authorization_code"},{"name":"redirect_uri","value":"https://app/cb"}]}},
        "response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[],"cookies":[],"content":{"size":512,"mimeType":"application/json","text":""},"redirectURL":"","headersSize":-1,"bodySize":-1},
        "cache":{},"timings":{"send":0,"wait":1,"receive":0}}"#;
    let missing = r#"{"startedDateTime":"2024-05-01T10:00:01Z","time":1,
        "request":{"method":"POST","url":"https://idp/token","httpVersion":"HTTP/1.1","headers":[],"queryString":[],"cookies":[],"headersSize":-1,"bodySize":120},
        "response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[],"cookies":[],"content":{"size":100,"mimeType":"text/html","text":"<html>"},"redirectURL":"","headersSize":-1,"bodySize":-1},
        "cache":{},"timings":{"send":0,"wait":1,"receive":0}}"#;
    let file = read(&har(&format!("{entry},{missing}"))).unwrap();
    let first = &file.entries[0].exchange;
    assert_eq!(
        &first.request.body.bytes[..],
        b"grant_type=authorization_code&redirect_uri=https%3A%2F%2Fapp%2Fcb"
    );
    let resp = first.response.as_ref().unwrap();
    assert_eq!(resp.body.state, CaptureState::NotCaptured);
    assert_eq!(resp.body.size, 512);
    let second = &file.entries[1].exchange;
    assert_eq!(second.request.body.state, CaptureState::NotCaptured);
    assert_eq!(second.request.body.size, 120);
    let resp = second.response.as_ref().unwrap();
    assert_eq!(resp.body.state, CaptureState::Truncated);
    assert_eq!(&resp.body.bytes[..], b"<html>");
}

#[test]
fn redirects_failed_requests_and_non_http_entries() {
    let redirect = r#"{"startedDateTime":"2024-05-01T10:00:00.000Z","time":5,
        "request":{"method":"GET","url":"https://idp/authorize?x=1#frag","httpVersion":"HTTP/1.1","headers":[],"bodySize":0},
        "response":{"status":302,"statusText":"Found","httpVersion":"HTTP/1.1","headers":[],"content":{"size":0,"mimeType":"x-unknown"},"redirectURL":"https://app/cb?code=c&state=s"},
        "timings":{"send":1,"wait":2,"receive":2}}"#;
    let failed = r#"{"startedDateTime":"2024-05-01T10:00:01.000Z","time":0,"_error":"net::ERR_CONNECTION_REFUSED",
        "request":{"method":"GET","url":"https://app/cb?code=c&state=s","httpVersion":"","headers":[]},
        "response":{"status":0,"statusText":"","httpVersion":"","headers":[],"content":{"size":0,"mimeType":"x-unknown"},"redirectURL":""},
        "timings":{"send":0,"wait":0,"receive":0}}"#;
    let data = r#"{"startedDateTime":"2024-05-01T10:00:02Z","request":{"method":"GET","url":"data:image/png;base64,AAAA"},"response":{"status":200}}"#;
    let file = read(&har(&format!("{redirect},{failed},{data}"))).unwrap();
    assert_eq!(file.entries.len(), 2);
    assert_eq!(file.skipped, 1);
    let first = &file.entries[0].exchange;
    assert_eq!(first.request.uri.query(), Some("x=1"));
    assert_eq!(
        first.response.as_ref().unwrap().headers["location"],
        "https://app/cb?code=c&state=s"
    );
    assert_eq!(first.request.body.state, CaptureState::Complete);
    let second = &file.entries[1].exchange;
    assert!(second.response.is_none());
    assert_eq!(
        second.error.as_ref().unwrap().message,
        "net::ERR_CONNECTION_REFUSED"
    );
}

#[test]
fn missing_timings_are_tolerated_but_a_missing_start_is_not() {
    let no_timings = r#"{"startedDateTime":"2024-05-01T10:00:00Z","time":42,
        "request":{"method":"GET","url":"https://a/"},"response":{"status":204}}"#;
    let file = read(&har(no_timings)).unwrap();
    let t = file.entries[0].exchange.timings;
    assert_eq!(t.response_head, None);
    assert_eq!(t.response_done, Some(Duration::from_millis(42)));

    let no_start =
        r#"{"request":{"method":"GET","url":"https://a/x?y=1"},"response":{"status":204}}"#;
    let err = read(&har(&format!("{no_timings},{no_start}"))).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("test.har: entry 2: GET https://a/x has no \"startedDateTime\""),
        "{text}"
    );
    let bad = r#"{"startedDateTime":"yesterday","request":{"method":"GET","url":"https://a/"}}"#;
    let err = read(&har(bad)).unwrap_err().to_string();
    assert!(
        err.contains("unreadable \"startedDateTime\" \"yesterday\""),
        "{err}"
    );
}

#[test]
fn times_in_several_shapes() {
    for (text, hours) in [
        ("2024-05-01T12:00:00.123+02:00", 2),
        ("2024-05-01T10:00:00Z", 0),
        ("2024-05-01T10:00:00.1234567-05:00", -5),
        ("2024-05-01T10:00:00.000", 0),
    ] {
        let t = parse_time(text).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(t.offset().whole_hours(), hours, "{text}");
    }
    assert!(parse_time("01/05/2024 10:00").is_none());
}

#[test]
fn bad_documents_say_what_is_wrong() {
    let cases: [(&str, &str); 6] = [
        ("this is not json", "not valid JSON"),
        (
            r#"{"log":{"version":"1.2","creator":{"name":"x"},"entries":[{"startedDateTime":"2024-05-01T10:00:00Z","#,
            "the file ends early at line 1",
        ),
        (
            r#"{"log":{"version":"2.0","entries":[]}}"#,
            "HAR version \"2.0\" is not supported",
        ),
        (r#"{"log":{"entries":[]}}"#, "\"log\" has no \"version\""),
        (
            r#"{"foo":1}"#,
            "not a HAR file: there is no top-level \"log\" object",
        ),
        (
            r#"{"log":{"version":"1.2"}}"#,
            "not a HAR file: \"log\" has no \"entries\" array",
        ),
    ];
    for (input, want) in cases {
        let err = read(input).unwrap_err().to_string();
        assert!(err.starts_with("test.har: "), "{err}");
        assert!(err.contains(want), "{input}\n -> {err}\nwant {want}");
    }
    let err = read(r#"{"log":{"version":"1.2","entries":{}}}"#).unwrap_err();
    assert!(matches!(err, HarError::NotHar { .. }), "{err}");
}

#[test]
fn bodies_are_capped_like_the_live_capture() {
    let big = "a".repeat(100);
    let entry = format!(
        r#"{{"startedDateTime":"2024-05-01T10:00:00Z","request":{{"method":"GET","url":"https://a/"}},"response":{{"status":200,"content":{{"size":100,"text":"{big}"}}}}}}"#
    );
    let file = read_from(
        har(&entry).as_bytes(),
        "t",
        ReadOptions {
            capture_limit: 10,
            progress: false,
        },
    )
    .unwrap();
    let body = &file.entries[0].exchange.response.as_ref().unwrap().body;
    assert_eq!(body.bytes.len(), 10);
    assert_eq!(body.size, 100);
    assert_eq!(body.state, CaptureState::Truncated);
}
