//! The web view in a real browser: headless Chromium, driven over the
//! DevTools protocol (chromiumoxide), opens the view; a failing sign-in
//! runs through the proxy against the mock IdP; without a reload the
//! attempt appears with its finding and the IdP's code; clicked, it shows
//! the timeline, the fix and the mismatch diff; the HAR download is
//! re-analysed; back from it (Escape, the browser's back), the row opened
//! has the keyboard focus again; a list longer than its first 100 rows
//! draws the rest when scrolled, and keeps it drawn when gone back to. A screenshot is left in cargo's test scratch directory (target/tmp/web-view.png).

use std::time::Duration;

use authlens::config::OutputConfig;
use authlens::oauth::AnalyzerConfig;
use authlens::proxy::Hooks;
use authlens::web::{WebOptions, WebView};
use serde_json::Value;
use testkit::devtools::chromiumoxide::{self, page::ScreenshotParams};
use testkit::lab::{Lab, authorize_params, token_form};
use testkit::mock_idp::MockIdp;

/// Evaluates `js` in the page until it returns a value that is not null
/// (or a minute passes): waiting on the page's own state, never on time.
async fn until(page: &chromiumoxide::Page, what: &str, js: &str) -> Value {
    testkit::devtools::until(page, what, js, Duration::from_secs(60)).await
}

/// The lab with the web view plugged in.
async fn lab_with_view() -> (Lab, WebView) {
    let web = WebView::new(WebOptions::default());
    let lab = Lab::start_with_hooks(
        MockIdp::default_config(),
        OutputConfig::silent(AnalyzerConfig::default()),
        Hooks {
            interceptor: None,
            local: Some(web.service()),
        },
    )
    .await;
    web.attach(&lab.proxy.session);
    (lab, web)
}

/// Presses `key` with the focus inside the page's `<main>`.
async fn press(page: &chromiumoxide::Page, key: &str) {
    page.find_element("main")
        .await
        .unwrap()
        .press_key(key)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_shows_a_failing_sign_in_live_and_its_details_in_chromium() {
    let Some(chromium) = testkit::chromium_or_skip("the web view in a real browser (Chromium)")
    else {
        return;
    };
    let (mut lab, web) = lab_with_view().await;
    let url = web.url(lab.proxy.addr);
    let profile = tempfile::tempdir().unwrap();
    let (mut browser, events) =
        testkit::devtools::launch(&chromium, profile.path(), Duration::from_secs(60)).await;

    // The printed URL opens the view; it follows the session live.
    let page = browser.new_page(url.as_str()).await.unwrap();
    until(
        &page,
        "the stream",
        "document.querySelector('#live.on') ? true : null",
    )
    .await;
    let shown: Value = page
        .evaluate("location.href")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert!(
        !shown.as_str().unwrap().contains("token="),
        "the token left in the address bar: {shown}"
    );

    // A sign-in that fails at redemption: a redirect_uri with a trailing slash.
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params("st-chromium", &[]))
        .await
        .unwrap();
    let mut form = token_form(&code);
    form[2] = ("redirect_uri", "https://app.test/callback/");
    let (status, body) = lab.redeem(&tenant, &form).await;
    assert_eq!(status, 400);
    let idp_code = body["error_codes"][0]
        .as_u64()
        .map(|n| format!("AADSTS{n}"));
    lab.lines_until_verdict().await;

    // Without a reload: the row appears, failed, with its rule and IdP code.
    let row = until(
        &page,
        "the failed attempt in the list",
        "(() => { const r = document.querySelector('tr.attempt'); return r && r.innerText.includes('failed') ? r.innerText : null })()",
    )
    .await;
    let row = row.as_str().unwrap();
    assert!(row.contains("param-mismatch"), "{row}");
    if let Some(idp_code) = &idp_code {
        assert!(row.contains(idp_code.as_str()), "{idp_code} missing: {row}");
    }
    assert!(row.contains("failed at token"), "{row}");
    assert!(!row.contains(&code), "the code in clear: {row}");

    // Into the attempt: the timeline, the fix, the diff.
    page.find_element("tr.attempt")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &page,
        "the timeline",
        "document.querySelector('svg#timeline circle') ? true : null",
    )
    .await;
    let fix = until(
        &page,
        "the finding's fix",
        "(() => { const f = document.querySelector('.finding[data-rule=param-mismatch] .fix'); return f ? f.innerText : null })()",
    )
    .await;
    assert!(
        fix.as_str().unwrap().starts_with("Fix: ") && fix.as_str().unwrap().len() > 10,
        "{fix}"
    );
    let marked = until(
        &page,
        "the mismatch diff",
        "(() => { const m = [...document.querySelectorAll('.diff-token mark.add')].map(m => m.textContent).join(''); return m || null })()",
    )
    .await;
    assert_eq!(marked, "/", "the trailing slash is what differs");
    let lifetime = until(
        &page,
        "the code lifetime on the timeline",
        "(() => { const t = [...document.querySelectorAll('svg#timeline text')].map(t => t.textContent).find(t => t.startsWith('code valid for')); return t || null })()",
    )
    .await;
    assert!(lifetime.as_str().unwrap().contains("10 min"), "{lifetime}");

    let text: Value = page
        .evaluate("document.querySelector('main').innerText")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    let text = text.as_str().unwrap();
    assert!(
        !text.lines().any(|l| l == "null" || l == "undefined"),
        "{text}"
    );
    assert!(
        text.contains("AADSTS"),
        "the catalogue's explanation: {text}"
    );

    // The screenshot, as a test artifact (in cargo's scratch directory for
    // integration tests, wherever the target directory is).
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let shot = page
        .save_screenshot(
            ScreenshotParams::builder().full_page(true).build(),
            target.join("web-view.png"),
        )
        .await
        .unwrap();
    assert!(shot.starts_with(b"\x89PNG"), "a PNG");

    // The HAR download, fetched by the page with its cookie, re-analysed.
    let har = until(
        &page,
        "the HAR download",
        "fetch(document.querySelector('#dl-har').href).then(r => r.ok ? r.text() : null)",
    )
    .await;
    let har = har.as_str().unwrap();
    assert!(!har.contains(&code), "the code in clear in the HAR");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attempt.har");
    std::fs::write(&path, har).unwrap();
    let recording = authlens::har::load(&[path], authlens::har::ReadOptions::default()).unwrap();
    let tally = authlens::session::Session::replay(
        &recording,
        &OutputConfig::silent(AnalyzerConfig::default()),
    )
    .unwrap();
    assert_eq!(tally.by_rule.get("param-mismatch"), Some(&1), "{tally:?}");

    // Keyboard: back from the sign-in (Escape), the row that was opened has
    // the focus again; Enter opens it, and the browser's back returns to it.
    let id = until(
        &page,
        "the attempt's id",
        "location.hash.startsWith('#/attempt/') ? location.hash.split('/')[2] : null",
    )
    .await;
    let id = id.as_str().unwrap();
    let row_focused = format!(
        "(() => {{ const a = document.activeElement; return a && a.matches('#signins tr.attempt[data-id=\"{id}\"]') ? true : null }})()"
    );
    let opened = format!(
        "location.hash === '#/attempt/{id}' && document.querySelector('svg#timeline') ? true : null"
    );
    press(&page, "Escape").await;
    until(&page, "the opened row focused after Escape", &row_focused).await;
    press(&page, "Enter").await;
    until(&page, "the attempt opened with Enter", &opened).await;
    page.evaluate("history.back()").await.unwrap();
    until(&page, "the opened row focused after back", &row_focused).await;

    browser.close().await.unwrap();
    let _ = browser.wait().await;
    events.abort();
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_list_draws_more_rows_when_scrolled_and_back_from_a_row_keeps_the_place() {
    let Some(chromium) =
        testkit::chromium_or_skip("the web view's long lists in a real browser (Chromium)")
    else {
        return;
    };
    let (lab, web) = lab_with_view().await;
    // More sign-ins than a list draws at first (100): each left at
    // authorize, one request apiece.
    let tenant = lab.tenant();
    for i in 0..130 {
        lab.authorize(&tenant, &authorize_params(&format!("st-{i}"), &[]))
            .await
            .expect("a code");
    }
    let profile = tempfile::tempdir().unwrap();
    let (mut browser, events) =
        testkit::devtools::launch(&chromium, profile.path(), Duration::from_secs(60)).await;
    let page = browser
        .new_page(web.url(lab.proxy.addr).as_str())
        .await
        .unwrap();
    let rows = "document.querySelectorAll('#signins tbody tr[tabindex]').length";
    let count = until(
        &page,
        "the first rows of the list",
        &format!("(() => {{ const c = document.getElementById('count').textContent; return c.includes('of 130') && {rows} === 100 ? c : null }})()"),
    )
    .await;
    assert!(
        count.as_str().unwrap().contains("scroll for more"),
        "{count}"
    );

    // Scrolled to its end, the list draws the rest.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        .await
        .unwrap();
    until(
        &page,
        "the rest of the list",
        &format!("{rows} === 130 && !document.querySelector('tr.more') ? true : null"),
    )
    .await;

    // The row farthest down, opened with the keyboard: back from it, it has
    // the focus again, the list drawn as far as it was.
    let id = page
        .evaluate("(() => { const r = [...document.querySelectorAll('#signins tr.attempt')].pop(); r.focus(); return r.dataset.id })()")
        .await
        .unwrap()
        .into_value::<String>()
        .unwrap();
    press(&page, "Enter").await;
    until(
        &page,
        "the sign-in opened",
        &format!("location.hash === '#/attempt/{id}' && document.querySelector('#attempt-title') ? true : null"),
    )
    .await;
    press(&page, "Escape").await;
    until(
        &page,
        "the row focused again, the list as far drawn",
        &format!("(() => {{ const a = document.activeElement; return a && a.matches('#signins tr.attempt[data-id=\"{id}\"]') && {rows} === 130 ? true : null }})()"),
    )
    .await;

    browser.close().await.unwrap();
    let _ = browser.wait().await;
    events.abort();
    lab.stop().await;
}
