//! A sign-in lab: the mock Entra IdP served over TLS as
//! `login.microsoftonline.com`, an app served as `app.test`, authlens (a
//! `Session`: proxy, analysis, and whatever outlets the caller asks for),
//! and a client that plays both the browser and the app. Tests read the
//! analysis output as JSON lines.

use std::sync::Arc;
use std::time::Duration;

use authlens::config::OutputConfig;
use authlens::oauth::{AnalyzerConfig, Event};
use authlens::output::json_lines;
use authlens::proxy::Hooks;
use authlens::session::SessionSummary;
use bytes::Bytes;
use http::Response;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::mock_idp::{MockIdp, MockIdpConfig};
use crate::upstream::{Handler, TestUpstream, Tls};
use crate::{ProxyOptions, TestCa, TestProxy};

pub const IDP: &str = "login.microsoftonline.com";
pub const WEB_CLIENT: &str = "11111111-1111-4111-8111-111111111111";
pub const WEB_SECRET: &str = "web-secret";
pub const WEB_REDIRECT: &str = "https://app.test/callback";
pub const PUBLIC_CLIENT: &str = "22222222-2222-4222-8222-222222222222";

pub struct Lab {
    pub ca: TestCa,
    pub idp: Arc<MockIdp>,
    pub proxy: TestProxy,
    /// The analysis events, subscribed before any traffic.
    pub events: broadcast::Receiver<Arc<Event>>,
    /// A client that does not follow redirects (the test plays the browser).
    pub client: reqwest::Client,
    _idp_server: TestUpstream,
    _app_server: TestUpstream,
}

/// The mock IdP served over TLS as `login.microsoftonline.com` on
/// `addr` (port 0 for any), with a certificate from `ca`. A chosen port may
/// be taken: the error is the listener's.
pub async fn serve_mock_idp(
    ca: &TestCa,
    config: MockIdpConfig,
    addr: std::net::SocketAddr,
) -> std::io::Result<(Arc<MockIdp>, TestUpstream)> {
    let idp = Arc::new(MockIdp::new(config));
    let handler: Handler = {
        let idp = idp.clone();
        Arc::new(move |req| idp.handle(req))
    };
    let server = TestUpstream::start_with_addr(ca, Tls::names(&[IDP]), handler, addr).await?;
    Ok((idp, server))
}

/// [`serve_mock_idp`] on any loopback port.
async fn mock_idp_on_any_port(ca: &TestCa, config: MockIdpConfig) -> (Arc<MockIdp>, TestUpstream) {
    serve_mock_idp(ca, config, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap_or_else(|e| panic!("cannot listen on a loopback port: {e}"))
}

/// [`serve_mock_idp`] with the default configuration on any loopback port.
pub async fn default_mock_idp(ca: &TestCa) -> (Arc<MockIdp>, TestUpstream) {
    mock_idp_on_any_port(ca, MockIdp::default_config()).await
}

impl Lab {
    pub async fn start(idp_config: MockIdpConfig, analyzer: AnalyzerConfig) -> Lab {
        Lab::start_with_output(idp_config, OutputConfig::silent(analyzer)).await
    }

    /// The lab with authlens writing to the outlets `output` names (the demo's
    /// live log).
    pub async fn start_with_output(idp_config: MockIdpConfig, output: OutputConfig) -> Lab {
        Lab::start_with_hooks(idp_config, output, Hooks::default()).await
    }

    /// The lab with an interceptor (the fault injector) in authlens's proxy.
    pub async fn start_with_hooks(
        idp_config: MockIdpConfig,
        output: OutputConfig,
        hooks: Hooks,
    ) -> Lab {
        let ca = TestCa::new();
        let (idp, idp_server) = mock_idp_on_any_port(&ca, idp_config).await;
        let app: Handler = Arc::new(|_req| {
            Response::builder()
                .header("content-type", "text/html")
                .body(Bytes::from_static(b"<html>signed in</html>"))
                .unwrap()
        });
        let app_server = TestUpstream::start_with(&ca, Tls::names(&["app.test"]), app).await;
        let certs = tempfile::tempdir().unwrap();
        let mut proxy = TestProxy::start_with_output(
            &ca,
            ProxyOptions {
                routes: vec![
                    (IDP.into(), 443, idp_server.addr),
                    ("app.test".into(), 443, app_server.addr),
                ],
                trust_test_ca: true,
                hooks,
                ..Default::default()
            },
            certs.path(),
            output,
        )
        .await;
        proxy.certs = Some(certs);
        let events = proxy.session.events().live;
        let client = crate::client_through(&proxy.url(), proxy.ca_pem.as_bytes());
        Lab {
            ca,
            idp,
            proxy,
            events,
            client,
            _idp_server: idp_server,
            _app_server: app_server,
        }
    }

    /// Stops authlens in its one shutdown order (outlets flushed).
    pub async fn stop(self) -> SessionSummary {
        self.proxy.stop().await
    }

    pub async fn default() -> Lab {
        Lab::start(MockIdp::default_config(), AnalyzerConfig::default()).await
    }

    pub fn tenant(&self) -> String {
        self.idp.config().tenant.clone()
    }

    /// `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/{leaf}`.
    pub fn endpoint(&self, tenant: &str, leaf: &str) -> String {
        format!("https://{IDP}/{tenant}/oauth2/v2.0/{leaf}")
    }

    /// The browser's authorize request; returns the code from the redirect.
    pub async fn authorize(&self, tenant: &str, params: &[(&str, &str)]) -> Option<String> {
        let url =
            reqwest::Url::parse_with_params(&self.endpoint(tenant, "authorize"), params).unwrap();
        let resp = self.client.get(url).send().await.unwrap();
        let location = resp.headers().get("location")?.to_str().ok()?.to_string();
        // The browser follows the redirect to the app's callback.
        if location.starts_with("https://app.test/") {
            let _ = self.client.get(&location).send().await.unwrap();
        }
        let url = reqwest::Url::parse(&location).ok()?;
        url.query_pairs()
            .chain(
                url.fragment()
                    .map(|f| reqwest::Url::parse(&format!("x:?{f}")).unwrap())
                    .iter()
                    .flat_map(|u| u.query_pairs().into_owned().collect::<Vec<_>>())
                    .map(|(k, v)| (k.into(), v.into())),
            )
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
    }

    /// The Web client pushes `params` to the PAR endpoint (authenticated
    /// with its secret); returns the request_uri when the IdP gave one.
    pub async fn push(&self, tenant: &str, params: &[(&str, &str)]) -> Option<String> {
        let mut form = params.to_vec();
        form.push(("client_secret", WEB_SECRET));
        let resp = self
            .client
            .post(self.endpoint(tenant, "par"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let json: Value = resp.json().await.ok()?;
        json["request_uri"].as_str().map(str::to_owned)
    }

    /// The browser's /authorize carrying only the Web client's id and
    /// `request_uri`, as .NET 9 sends it after a push; returns the code.
    pub async fn authorize_by_uri(&self, tenant: &str, request_uri: &str) -> Option<String> {
        self.authorize(
            tenant,
            &[("client_id", WEB_CLIENT), ("request_uri", request_uri)],
        )
        .await
    }

    /// A code for the Web client issued straight by the IdP, bypassing the
    /// proxy (as when the browser is not set to use it).
    pub fn code_outside_proxy(&self) -> String {
        let url = web_authorize_url(&self.tenant(), "outside");
        let direct = self
            .idp
            .handle(http::Request::get(url.as_str()).body(Bytes::new()).unwrap());
        code_in(direct.headers()["location"].to_str().unwrap())
    }

    /// The browser's authorize request in form_post mode; returns the code
    /// from the IdP's auto-submitting page (the test does not submit it).
    pub async fn authorize_form_post(&self, tenant: &str, params: &[(&str, &str)]) -> String {
        let mut params = params.to_vec();
        params.push(("response_mode", "form_post"));
        let url =
            reqwest::Url::parse_with_params(&self.endpoint(tenant, "authorize"), &params).unwrap();
        let html = self
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        html.split("name=\"code\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no code in the form_post page: {html}"))
            .to_string()
    }

    /// The app's token request, form-encoded; returns the status and JSON.
    pub async fn redeem(&self, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let resp = self
            .client
            .post(self.endpoint(tenant, "token"))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let json = resp.json().await.unwrap_or(Value::Null);
        (status, json)
    }

    /// Every event as a JSON line, until `until` matches one (or 30 s pass).
    pub async fn lines_until(&mut self, until: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let Ok(Ok(event)) = tokio::time::timeout_at(deadline, self.events.recv()).await else {
                panic!(
                    "expected event never came; got:\n{}",
                    out.iter()
                        .map(|v: &Value| v.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            };
            let line = json_lines::to_line(&event);
            let value: Value = serde_json::from_str(&line).expect("every line is JSON");
            let done = until(&value);
            out.push(value);
            if done {
                return out;
            }
        }
    }

    /// Events until the token response of the next redemption has been analysed
    /// (its findings and verdict follow it closely, so wait for the verdict).
    pub async fn lines_until_verdict(&mut self) -> Vec<Value> {
        self.lines_until(|v| v["type"] == "verdict").await
    }
}

/// The findings among `lines`, as `(rule, severity, field)`.
pub fn findings(lines: &[Value]) -> Vec<(String, String, Option<String>)> {
    lines
        .iter()
        .filter(|v| v["type"] == "finding")
        .map(|v| {
            (
                v["rule"].as_str().unwrap_or_default().to_string(),
                v["severity"].as_str().unwrap_or_default().to_string(),
                v["field"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// True when a finding with this rule (and field, when given) is present.
pub fn has(lines: &[Value], rule: &str, field: Option<&str>) -> bool {
    findings(lines)
        .iter()
        .any(|(r, _, f)| r == rule && (field.is_none() || f.as_deref() == field))
}

/// PKCE pair from RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An authorize request of the Web client without PKCE, for `state`.
pub fn web_authorize_url(tenant: &str, state: &str) -> reqwest::Url {
    reqwest::Url::parse_with_params(
        &format!("https://{IDP}/{tenant}/oauth2/v2.0/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("state", state),
        ],
    )
    .unwrap()
}

/// The `code` in the query of a redirect's `location`; panics without one.
pub fn code_in(location: &str) -> String {
    reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"))
}

/// Sends the authorize request `url` with `client` and returns the code
/// from the redirect; panics without a `location` or a code in it.
pub async fn code_from_authorize(client: &reqwest::Client, url: reqwest::Url) -> String {
    let resp = client.get(url).send().await.unwrap();
    code_in(resp.headers()["location"].to_str().unwrap())
}

/// A v2 authorize request of the Web client with PKCE S256 and a nonce.
pub fn authorize_params<'a>(
    state: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid profile offline_access User.Read"),
        ("state", state),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    params
}

/// The Web client's correct redemption of `code`.
pub fn token_form(code: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", WEB_REDIRECT),
        ("client_id", WEB_CLIENT),
        ("client_secret", WEB_SECRET),
        ("code_verifier", VERIFIER),
    ]
}
