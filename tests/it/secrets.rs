//! One corpus of secrets, planted in every place a request or a response
//! can carry one (query, fragment, request and response headers, cookies,
//! `Set-Cookie`, forms, JSON, multipart, text/plain, gzip/br/zstd bodies,
//! `Location`, a form_post page, a WebSocket handshake and its frames),
//! sent through the real proxy to the mock Entra ID and a loopback app with
//! every output on (`--har`, `--json`, the live log, the run's report); then
//! `authlens report` and `authlens analyze` on what was written. No output
//! holds any planted value in clear, in any encoding, and the outputs show
//! the fingerprints that stand for them.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use authlens::config::{LiveLogConfig, OutputConfig, Sink};
use authlens::oauth::AnalyzerConfig;
use authlens::oauth::params::encode_component;
use authlens::output::live_log::{DEFAULT_WIDTH, LiveLogOptions};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response};
use serde_json::{Value, json};
use testkit::lab::{IDP, VERIFIER, WEB_CLIENT, WEB_REDIRECT, WEB_SECRET, authorize_params};
use testkit::mock_idp::MockIdp;
use testkit::upstream::{Handler, TestUpstream, Tls};
use testkit::{ProxyOptions, TestCa, TestProxy};

/// The planted values by place, and whether the HAR must show the
/// fingerprint of each (a WebSocket frame is not recorded at all).
#[derive(Default)]
struct Corpus {
    values: BTreeMap<&'static str, String>,
    unrecorded: Vec<&'static str>,
}

impl Corpus {
    /// A fresh value for `place`, distinct from every other.
    fn plant(&mut self, place: &'static str) -> String {
        let word = place.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "-");
        let value = format!("{word}-{}", testkit::hex(&rand::random::<[u8; 8]>()));
        self.values.insert(place, value.clone());
        value
    }

    /// A value with characters that need escaping in URLs, forms and JSON.
    fn plant_odd(&mut self, place: &'static str) -> String {
        let word = place.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
        let value = format!("{word}/+=~ {}!", testkit::hex(&rand::random::<[u8; 6]>()));
        self.values.insert(place, value.clone());
        value
    }

    fn get(&self, place: &str) -> &str {
        &self.values[place]
    }
}

/// The forms a value takes in the outputs if it leaks.
fn leaked_forms(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).unwrap();
    let mut forms = vec![
        value.to_string(),
        encode_component(value),
        encode_component(value).replace("%20", "+"),
        json[1..json.len() - 1].to_string(),
        json[1..json.len() - 1].replace('/', "\\/"),
        STANDARD.encode(value),
        STANDARD.encode(format!("{WEB_CLIENT}:{value}")),
        STANDARD.encode(format!("{WEB_CLIENT}:{}", encode_component(value))),
    ];
    forms.sort();
    forms.dedup();
    forms
}

/// Every value found in clear in `text`, with the form it was found in.
fn leaks<'a>(text: &str, secrets: &'a BTreeMap<String, String>) -> Vec<(&'a str, String)> {
    secrets
        .iter()
        .flat_map(|(place, value)| {
            leaked_forms(value)
                .into_iter()
                .filter(|form| text.contains(form.as_str()))
                .map(move |form| (place.as_str(), form))
        })
        .collect()
}

/// The six hex digits of a value's fingerprint (its kind aside).
fn print_hex(value: &str) -> String {
    authlens::oauth::fingerprint("x", value)[2..].to_string()
}

fn shows_fingerprint(text: &str, value: &str) -> bool {
    let hex = print_hex(value);
    text.contains(&format!("#{hex}")) || text.contains(&format!("%23{hex}"))
}

/// A brotli stream holding `data` in one uncompressed meta-block (RFC 7932
/// §9.2): enough for a test upstream, and no encoder crate for it.
fn brotli_stored(data: &[u8]) -> Vec<u8> {
    assert!(!data.is_empty() && data.len() <= 1 << 16);
    // WBITS 16 (one 0 bit), ISLAST 0, MNIBBLES 4 (00), MLEN-1 (16 bits),
    // ISUNCOMPRESSED 1, then zero bits to the byte boundary.
    let header = (((data.len() - 1) as u32) << 4) | (1 << 20);
    let mut out = header.to_le_bytes()[..3].to_vec();
    out.extend_from_slice(data);
    // ISLAST 1, ISLASTEMPTY 1.
    out.push(0b11);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A DPoP proof: a JWT signed with a made-up key (the proxy only sees it).
fn dpop_proof(jti: &str) -> String {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}})
        ),
        part(
            json!({"jti": jti, "htm": "GET", "htu": "https://app.test/api/data", "iat": 1714561200})
        ),
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 64]>()),
    )
}

/// The app at `app.test`: an API, a second token endpoint that answers in
/// odd shapes, pages and redirects, each carrying planted values.
fn app(corpus: &Corpus) -> Handler {
    let v = |place: &str| corpus.get(place).to_string();
    let (set_cookie, resp_auth_token, refresh_code) = (
        v("set-cookie"),
        v("response x-auth-token"),
        v("refresh header code"),
    );
    let (frag_at, loc_code) = (v("location fragment"), v("location query code"));
    let token_text = json!({
        "access_token": v("text/plain json access_token"),
        "refresh_token": v("text/plain json refresh_token"),
        "token_type": "Bearer", "expires_in": 3599,
    })
    .to_string();
    let token_form = format!(
        "access_token={}&token_type=bearer&expires_in=3599",
        v("text/plain form access_token")
    );
    let token_untyped = json!({"access_token": v("javascript answer access_token")}).to_string();
    let gzipped = gzip(
        json!({"access_token": v("gzip json access_token"), "note": "packed"})
            .to_string()
            .as_bytes(),
    );
    let brotli = brotli_stored(
        json!({"refresh_token": v("br json refresh_token")})
            .to_string()
            .as_bytes(),
    );
    let zstd = ruzstd::encoding::compress_to_vec(
        format!("id_token={}&state=z1", v("zstd form id_token")).as_bytes(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let page = format!(
        r#"<html><body><form method="post" action="https://app.test/callback"><input type="hidden" name="code" value="{}"/><input type="hidden" name="id_token" value="{}"/></form><script>var accessToken = "{}";</script><pre>&lt;x&gt;<refresh_token>{}</refresh_token></pre></body></html>"#,
        v("html form_post code"),
        v("html form_post id_token"),
        v("html script accessToken"),
        v("html xml refresh_token"),
    );
    let plain = format!(
        "password: {}\napi_key={}\nthat is all\n",
        v("text/plain password"),
        v("text/plain api_key")
    );
    let echo = format!(
        "your key was {} and your session {}",
        v("x-api-key"),
        v("cookie session")
    );
    Arc::new(move |req: Request<Bytes>| {
        let ok = |ct: &str, body: Vec<u8>| {
            Response::builder()
                .header("content-type", ct)
                .body(Bytes::from(body))
                .unwrap()
        };
        let redirect = |to: String| {
            Response::builder()
                .status(302)
                .header("location", to)
                .body(Bytes::new())
                .unwrap()
        };
        let case = req
            .headers()
            .get("x-case")
            .and_then(|c| c.to_str().ok())
            .unwrap_or_default();
        match (req.uri().path(), case) {
            ("/api/data", _) => Response::builder()
                .header("content-type", "application/json")
                .header(
                    "set-cookie",
                    format!("sid={set_cookie}; Path=/; Secure; HttpOnly"),
                )
                .header("x-auth-token", &resp_auth_token)
                .header(
                    "refresh",
                    format!("0; url=https://app.test/callback?code={refresh_code}"),
                )
                .body(Bytes::from_static(b"{\"ok\":true}"))
                .unwrap(),
            ("/login/implicit", _) => redirect(format!(
                "https://app.test/callback#access_token={frag_at}&token_type=Bearer&state=s9"
            )),
            ("/login/query", _) => redirect(format!(
                "https://app.test/callback?code={loc_code}&state=s10"
            )),
            ("/oauth2/token", "multipart") => ok("text/plain", token_text.clone().into()),
            ("/oauth2/token", "json-as-text") => {
                ok("text/plain; charset=utf-8", token_form.clone().into())
            }
            ("/oauth2/token", _) => ok("application/javascript", token_untyped.clone().into()),
            ("/gzip", _) => Response::builder()
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(Bytes::from(gzipped.clone()))
                .unwrap(),
            ("/br", _) => Response::builder()
                .header("content-type", "application/json")
                .header("content-encoding", "br")
                .body(Bytes::from(brotli.clone()))
                .unwrap(),
            ("/zstd", _) => Response::builder()
                .header("content-type", "text/plain")
                .header("content-encoding", "zstd")
                .body(Bytes::from(zstd.clone()))
                .unwrap(),
            ("/page", _) => ok("text/html; charset=utf-8", page.clone().into()),
            ("/plain", _) => ok("text/plain", plain.clone().into()),
            ("/echo", _) => ok("text/plain", echo.clone().into()),
            _ => ok("text/html", b"<html>signed in</html>".to_vec()),
        }
    })
}

/// The outputs of the run, as the command line would set them with
/// `--har`, `--json`, `--report` and a verbose live log to a file.
fn outputs(dir: &Path) -> OutputConfig {
    let mut output = OutputConfig::silent(AnalyzerConfig::default());
    output.har = Some(dir.join("session.har"));
    output.json = Some(Sink::File(dir.join("events.jsonl")));
    output.report = Some(Sink::File(dir.join("run-report.md")));
    output.live_log = Some(LiveLogConfig {
        sink: Sink::File(dir.join("live.log")),
        options: LiveLogOptions {
            color: false,
            verbose: true,
            width: DEFAULT_WIDTH,
        },
    });
    output
}

fn authlens(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_authlens"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs");
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "authlens {args:?}: {out:?}"
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The code in a redirect's query or fragment.
fn code_in(location: &str) -> String {
    let url = reqwest::Url::parse(&location.replace('#', "?")).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_holds_a_planted_secret_in_clear() {
    let mut corpus = Corpus::default();
    for place in [
        "query access_token",
        "query api_key",
        "query sig",
        "x-api-key",
        "x-client-secret",
        "api-key",
        "ocp-apim-subscription-key",
        "x-auth-token",
        "x-csrf-token",
        "dpop authorization",
        "cookie session",
        "cookie csrf",
        "set-cookie",
        "response x-auth-token",
        "refresh header code",
        "location fragment",
        "location query code",
        "multipart code",
        "multipart client_secret",
        "multipart code_verifier",
        "text/plain json access_token",
        "text/plain json refresh_token",
        "json-as-text refresh_token",
        "text/plain form access_token",
        "untyped form client_assertion",
        "javascript answer access_token",
        "gzip json access_token",
        "br json refresh_token",
        "zstd form id_token",
        "html form_post code",
        "html form_post id_token",
        "html script accessToken",
        "html xml refresh_token",
        "text/plain password",
        "text/plain api_key",
        "websocket query access_token",
        "websocket frame",
        "dpop proof jti",
    ] {
        corpus.plant(place);
    }
    for place in [
        "json-as-text client_secret",
        "untyped form client_secret",
        "basic client secret",
    ] {
        corpus.plant_odd(place);
    }
    corpus.unrecorded.push("websocket frame");
    // The DPoP proof is a value of its own; its jti is inside its claims.
    corpus.unrecorded.push("dpop proof jti");
    let proof = dpop_proof(corpus.get("dpop proof jti"));
    corpus.values.insert("dpop proof", proof.clone());

    // The mock Entra ID, the app, a WebSocket echo, and authlens with every
    // output on.
    let ca = TestCa::new();
    let (idp, idp_server) =
        testkit::lab::serve_mock_idp(&ca, MockIdp::default_config(), ([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
    let app_server = TestUpstream::start_with(&ca, Tls::names(&["app.test"]), app(&corpus)).await;
    let ws_server = TestUpstream::start(&ca, Tls::http1_only(&["ws.test"])).await;
    let dir = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let proxy = TestProxy::start_with_output(
        &ca,
        ProxyOptions {
            routes: vec![
                (IDP.into(), 443, idp_server.addr),
                ("app.test".into(), 443, app_server.addr),
                ("ws.test".into(), 443, ws_server.addr),
            ],
            trust_test_ca: true,
            ..Default::default()
        },
        certs.path(),
        outputs(dir.path()),
    )
    .await;
    let client = testkit::client_through(&proxy.url(), proxy.ca_pem.as_bytes());
    let tenant = idp.config().tenant.clone();
    let idp_url = |leaf: &str| format!("https://{IDP}/{tenant}/oauth2/v2.0/{leaf}");
    // Values the IdP makes up: codes and tokens.
    let mut issued: BTreeMap<String, String> = BTreeMap::new();
    issued.insert("client secret".into(), WEB_SECRET.into());
    issued.insert("code_verifier".into(), VERIFIER.into());

    // Real sign-ins: a code in a query, then in a fragment, then a
    // form_post page; each redeemed with the client secret and verifier.
    for (n, mode) in ["query", "fragment", "form_post"].into_iter().enumerate() {
        let state = format!("st-{mode}");
        let mut params = authorize_params(&state, &[]);
        params.push(("response_mode", mode));
        let url = reqwest::Url::parse_with_params(&idp_url("authorize"), &params).unwrap();
        let resp = client.get(url).send().await.unwrap();
        let code = if mode == "form_post" {
            let html = resp.text().await.unwrap();
            let code = html
                .split("name=\"code\" value=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no code in {html}"))
                .to_string();
            client
                .post(WEB_REDIRECT)
                .form(&[("code", code.as_str()), ("state", state.as_str())])
                .send()
                .await
                .unwrap();
            code
        } else {
            let location = resp.headers()["location"].to_str().unwrap().to_string();
            client.get(&location).send().await.unwrap();
            code_in(&location)
        };
        let redeemed = client
            .post(idp_url("token"))
            .form(&testkit::lab::token_form(&code))
            .send()
            .await
            .unwrap();
        assert_eq!(redeemed.status(), 200, "{mode}");
        let tokens: Value = redeemed.json().await.unwrap();
        for kind in ["access_token", "refresh_token", "id_token"] {
            let token = tokens[kind]
                .as_str()
                .unwrap_or_else(|| panic!("{kind}: {tokens}"));
            issued.insert(format!("{mode} {kind}"), token.to_string());
        }
        issued.insert(format!("{mode} code #{n}"), code);
    }

    // An API call with keys and tokens in its query, headers and cookies.
    let v = |place: &str| corpus.get(place).to_string();
    let api = client
        .get(format!(
            "https://app.test/api/data?access_token={}&api_key={}&sig={}&lang=en",
            v("query access_token"),
            v("query api_key"),
            v("query sig")
        ))
        .header("X-Api-Key", v("x-api-key"))
        .header("X-Client-Secret", v("x-client-secret"))
        .header("api-key", v("api-key"))
        .header("Ocp-Apim-Subscription-Key", v("ocp-apim-subscription-key"))
        .header("X-Auth-Token", v("x-auth-token"))
        .header("X-CSRF-Token", v("x-csrf-token"))
        .header("Authorization", format!("DPoP {}", v("dpop authorization")))
        .header("DPoP", &proof)
        .header(
            "Cookie",
            format!(
                "session={}; csrf={}; theme=dark",
                v("cookie session"),
                v("cookie csrf")
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);

    // Token requests in shapes the content type does not announce.
    let boundary = "----authlens-corpus-7MA4YWxkTrZu0gW";
    let fields = [
        ("grant_type", "authorization_code".to_string()),
        ("code", v("multipart code")),
        ("client_id", WEB_CLIENT.to_string()),
        ("client_secret", v("multipart client_secret")),
        ("code_verifier", v("multipart code_verifier")),
        ("redirect_uri", WEB_REDIRECT.to_string()),
    ];
    let mut multipart = String::new();
    for (name, value) in &fields {
        multipart.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    multipart.push_str(&format!("--{boundary}--\r\n"));
    let token_url = "https://app.test/oauth2/token";
    let sent = [
        (
            "multipart",
            format!("multipart/form-data; boundary={boundary}"),
            multipart,
            None,
        ),
        (
            "json-as-text",
            "text/plain".to_string(),
            json!({
                "grant_type": "refresh_token", "client_id": WEB_CLIENT,
                "refresh_token": v("json-as-text refresh_token"),
                "client_secret": v("json-as-text client_secret"),
            })
            .to_string(),
            None,
        ),
        (
            "untyped",
            String::new(),
            format!(
                "grant_type=client_credentials&client_id={WEB_CLIENT}&client_secret={}&client_assertion={}&scope=api",
                encode_component(&v("untyped form client_secret")),
                v("untyped form client_assertion")
            ),
            Some(v("basic client secret")),
        ),
    ];
    for (case, content_type, body, basic) in sent {
        let mut req = client.post(token_url).header("x-case", case).body(body);
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        if let Some(secret) = basic {
            req = req.basic_auth(WEB_CLIENT, Some(encode_component(&secret)));
        }
        assert_eq!(req.send().await.unwrap().status(), 200, "{case}");
    }

    // Compressed answers, pages, plain text, redirects, an echo of values
    // seen before.
    for path in [
        "/gzip",
        "/br",
        "/zstd",
        "/page",
        "/plain",
        "/login/implicit",
        "/login/query",
        "/echo",
    ] {
        let resp = client
            .get(format!("https://app.test{path}"))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success() || resp.status() == 302, "{path}");
        resp.bytes().await.unwrap();
    }

    // A WebSocket with a token in its handshake query and one in a frame.
    let (tcp, _) = proxy.connect_tunnel("ws.test:443").await;
    let tls = tokio_rustls::TlsConnector::from(testkit::client_config(
        proxy.ca_pem.as_bytes(),
        &[b"http/1.1"],
    ))
    .connect("ws.test".try_into().unwrap(), tcp)
    .await
    .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(
        format!(
            "wss://ws.test/ws?access_token={}",
            v("websocket query access_token")
        ),
        tls,
    )
    .await
    .unwrap();
    let frame = format!("{{\"access_token\":\"{}\"}}", v("websocket frame"));
    ws.send(tokio_tungstenite::tungstenite::Message::text(frame.clone()))
        .await
        .unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_text().unwrap().as_str(), frame);
    ws.close(None).await.unwrap();
    drop(ws);

    let summary = proxy.stop().await;
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);
    let (har_path, entries) = summary.har.expect("the HAR was written");
    assert_eq!(entries, 22, "one entry per request sent");
    drop((app_server, ws_server, idp_server));

    // Every output, then report and analyze on what was written.
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let har = std::fs::read_to_string(&har_path).unwrap();
    let jsonl = dir.path().join("events.jsonl");
    let report_md = dir.path().join("report.md");
    authlens(&[
        "report",
        har_path.to_str().unwrap(),
        "--out",
        report_md.to_str().unwrap(),
    ]);
    let outputs = [
        ("HAR", har.clone()),
        ("JSON lines", read("events.jsonl")),
        ("live log", read("live.log")),
        ("run's report", read("run-report.md")),
        ("report from the HAR", read("report.md")),
        (
            "report from the JSON lines",
            authlens(&["report", "--from-json", jsonl.to_str().unwrap()]),
        ),
        (
            "analyze of the HAR",
            authlens(&["analyze", har_path.to_str().unwrap(), "--verbose"]),
        ),
    ];

    let mut secrets: BTreeMap<String, String> = corpus
        .values
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    secrets.extend(issued.clone());
    let mut found = Vec::new();
    for (what, text) in &outputs {
        for (place, form) in leaks(text, &secrets) {
            found.push(format!("{what}: {place} as {form:?}"));
        }
    }
    assert!(found.is_empty(), "secrets in clear:\n{}", found.join("\n"));

    // Not vacuous: the HAR is a complete recording, shows the fingerprint
    // of every recorded value, and the analysis outputs show the codes'.
    let doc: Value = serde_json::from_str(&har).expect("the HAR is JSON");
    let urls: Vec<&str> = doc["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["request"]["url"].as_str())
        .collect();
    for path in [
        "/authorize",
        "/oauth2/v2.0/token",
        "app.test/oauth2/token",
        "/api/data",
        "/gzip",
        "/br",
        "/zstd",
        "/page",
        "/plain",
        "/echo",
        "wss://ws.test/ws",
    ] {
        let path = path.strip_prefix("wss://ws.test").unwrap_or(path);
        assert!(
            urls.iter().any(|u| u.contains(path)),
            "no entry for {path}: {urls:#?}"
        );
    }
    let missing: Vec<&str> = corpus
        .values
        .iter()
        .filter(|(place, _)| !corpus.unrecorded.contains(place))
        .filter(|(place, value)| match **place {
            // Inside the Basic credentials, base64-encoded.
            "basic client secret" => {
                let print = authlens::oauth::fingerprint("client_secret", value);
                !har.contains(
                    &STANDARD.encode(format!("{WEB_CLIENT}:{}", encode_component(&print))),
                )
            }
            _ => !shows_fingerprint(&har, value),
        })
        .map(|(place, _)| *place)
        .collect();
    assert!(
        missing.is_empty(),
        "no fingerprint in the HAR for {missing:?}"
    );
    // The analysis read the text/plain token response at the generic
    // token endpoint (after a multipart request it flagged).
    let answered = corpus.get("text/plain json access_token");
    let print = authlens::oauth::fingerprint("access_token", answered);
    for (what, text) in &outputs[1..3] {
        assert!(text.contains(&print), "{print} in the {what}");
    }
    for (place, code) in issued.iter().filter(|(k, _)| k.contains(" code #")) {
        assert!(shows_fingerprint(&har, code), "{place} in the HAR");
        let print = authlens::oauth::fingerprint("code", code);
        for (what, text) in &outputs[1..3] {
            assert!(text.contains(&print), "{place} ({print}) in the {what}");
        }
    }
}
