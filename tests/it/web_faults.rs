//! The web view's faults panel, end to end: the real proxy with
//! `--fault wrong-verifier` against the mock IdP. A sign-in fails with the
//! fault injected; switched off through `POST /api/faults` (the token's
//! cookie, the page's `Origin`), the next sign-in goes through untouched;
//! switched on again, the one after fails injected again. Each sign-in is
//! read both from what the app got and from the view's own attempt row.

use std::sync::Arc;

use authlens::config::OutputConfig;
use authlens::inject::{Fault, FaultInjector};
use authlens::oauth::AnalyzerConfig;
use authlens::proxy::Hooks;
use authlens::web::{WebOptions, WebView};
use serde_json::{Value, json};
use testkit::lab::{Lab, authorize_params, token_form};
use testkit::mock_idp::MockIdp;

use super::web::{cookie, direct, next_event};

/// AADSTS501481: the code verifier does not match the challenge.
const BAD_VERIFIER: u64 = 501481;

/// The lab with one fault injected and the web view listing it.
async fn fault_lab(fault: &str) -> (Lab, WebView, Arc<FaultInjector>) {
    let injector = FaultInjector::new(vec![Fault::parse(fault).unwrap()], None, false).unwrap();
    let injector = Arc::new(injector);
    let web = WebView::new(WebOptions {
        faults: Some(injector.clone()),
        ..WebOptions::default()
    });
    let lab = Lab::start_with_hooks(
        MockIdp::default_config(),
        OutputConfig::silent(AnalyzerConfig::default()),
        Hooks {
            interceptor: Some(injector.clone()),
            local: Some(web.service()),
        },
    )
    .await;
    web.attach(&lab.proxy.session);
    (lab, web, injector)
}

/// A page's view of the run: its stream (followed from the start) and the
/// requests it makes with the token's cookie.
struct Page {
    base: String,
    cookie: String,
    http: reqwest::Client,
    stream: reqwest::Response,
    buffer: String,
    /// The attempts already seen finished.
    seen: Vec<u64>,
}

impl Page {
    async fn open(lab: &Lab, web: &WebView) -> Page {
        let addr = lab.proxy.addr;
        let http = direct();
        let cookie = cookie(web, addr);
        let base = format!("http://{addr}");
        let mut stream = http
            .get(format!("{base}/api/stream"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let mut buffer = String::new();
        next_event(&mut stream, &mut buffer, "resync", |_| true).await;
        Page {
            base,
            cookie,
            http,
            stream,
            buffer,
            seen: Vec::new(),
        }
    }

    /// The faults as `/api/status` lists them.
    async fn faults(&self) -> Value {
        let status: Value = self
            .http
            .get(format!("{}/api/status", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status["faults"].clone()
    }

    /// What the page's switch does: `POST /api/faults` from the page's own
    /// origin. Returns the faults as the answer lists them.
    async fn switch(&self, index: usize, on: bool) -> Value {
        let resp = self
            .http
            .post(format!("{}/api/faults", self.base))
            .header("cookie", &self.cookie)
            .header("origin", &self.base)
            .json(&json!({ "index": index, "on": on }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "switching fault {index} to {on}");
        resp.json().await.unwrap()
    }

    /// The row of the next attempt to finish (one not seen before).
    async fn next_finished(&mut self) -> Value {
        let seen = self.seen.clone();
        let row = next_event(&mut self.stream, &mut self.buffer, "attempt", |a| {
            a["status"] != "in-progress" && !seen.contains(&a["id"].as_u64().unwrap_or(0))
        })
        .await;
        self.seen.push(row["id"].as_u64().unwrap());
        row
    }
}

/// One sign-in of the Web client with PKCE: the IdP's answer to the
/// redemption, and the attempt's row in the view once it has finished.
async fn sign_in(lab: &mut Lab, page: &mut Page, state: &str) -> (u16, Value, Value) {
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params(state, &[]))
        .await
        .expect("the IdP issues a code");
    let (status, answer) = lab.redeem(&tenant, &token_form(&code)).await;
    lab.lines_until_verdict().await;
    let row = page.next_finished().await;
    (status, answer, row)
}

fn assert_injected(status: u16, answer: &Value, row: &Value) {
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error_codes"][0], BAD_VERIFIER, "{answer}");
    assert_eq!(row["status"], "failed", "{row}");
    assert_eq!(row["injected"], json!(["wrong-verifier"]), "{row}");
    assert!(
        row["rules"]
            .as_array()
            .unwrap()
            .contains(&"pkce-mismatch".into()),
        "{row}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_switched_off_in_the_view_spares_the_next_sign_in_and_on_again_hits_it() {
    let (mut lab, web, injector) = fault_lab("wrong-verifier").await;
    let mut page = Page::open(&lab, &web).await;
    assert_eq!(
        page.faults().await,
        json!([{ "index": 0, "fault": "wrong-verifier (every sign-in)", "on": true }])
    );

    // On: the verifier is replaced, the IdP refuses, the view says injected.
    let (status, answer, row) = sign_in(&mut lab, &mut page, "st-on").await;
    assert_injected(status, &answer, &row);
    assert_eq!(lab.idp.stats().codes_redeemed, 0);

    // Off: the next sign-in goes through as the app sent it.
    let listed = page.switch(0, false).await;
    assert_eq!(listed[0]["on"], false, "{listed}");
    assert_eq!(page.faults().await[0]["on"], false);
    assert!(!injector.switches()[0].1);
    let (status, answer, row) = sign_in(&mut lab, &mut page, "st-off").await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["access_token"].is_string(), "{answer}");
    assert_eq!(row["status"], "signed-in", "{row}");
    assert_eq!(row["injected"], json!([]), "{row}");
    assert_eq!(lab.idp.stats().codes_redeemed, 1);

    // On again: the fault is back for the sign-in after.
    let listed = page.switch(0, true).await;
    assert_eq!(listed[0]["on"], true, "{listed}");
    let (status, answer, row) = sign_in(&mut lab, &mut page, "st-on-again").await;
    assert_injected(status, &answer, &row);
    assert_eq!(lab.idp.stats().codes_redeemed, 1);

    // A fault that is not there is refused and changes nothing.
    let resp = page
        .http
        .post(format!("{}/api/faults", page.base))
        .header("cookie", &page.cookie)
        .header("origin", &page.base)
        .json(&json!({ "index": 1, "on": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("no such fault"));
    assert_eq!(page.faults().await[0]["on"], true);
    lab.stop().await;
}
