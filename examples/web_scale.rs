//! How the live web view renders a big session in a real browser: 1,000
//! sign-ins and 10,000 exchanges, measured in the page (headless Chromium
//! over the DevTools protocol, `performance.now()`).
//!
//! `cargo run --example web_scale -- [--signins N] [--exchanges M] [--stream-seconds S] [--concurrency C]`
//!
//! authlens runs in-process (the library `Session`, the mock Entra ID, an
//! app, the web view plugged in as in the tests). A client fills the view
//! through the proxy: N real sign-ins against the mock IdP (one in ten left
//! at authorize, one in five failing at redemption with a mismatched
//! redirect_uri, the rest signed in), then plain requests to the app until
//! M exchanges are kept. A fresh page then opens the view and the page
//! itself reports (numbers only, no assertion; the machine's load shows in
//! them):
//!
//! - the first render of the sign-in list, from navigation start (and when
//!   the lists' JSON had arrived), and of the traffic list when switched to;
//! - a free-text filter on each list: the script's time, and until the
//!   next frame is painted;
//! - while the stream delivers rows (the same client signing in and
//!   browsing for S seconds), each list on screen: the time every redraw
//!   and every stream event's handler takes, the long tasks, and the
//!   largest gap between frames.
//!
//! The page's own code is not changed for this: a script run before it
//! times the stream's handlers and the redraw timer's callbacks by wrapping
//! `EventSource.addEventListener` and `setTimeout`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authlens::config::OutputConfig;
use authlens::oauth::AnalyzerConfig;
use authlens::proxy::Hooks;
use authlens::web::{WebOptions, WebView};
use serde_json::Value;
use testkit::devtools::chromiumoxide;
use testkit::lab::{Lab, authorize_params, token_form};
use testkit::mock_idp::MockIdp;

/// Run in the page before its own script: timings kept in `window.__perf`.
const PROBE: &str = r##"
(() => {
  const perf = window.__perf = { longtasks: [], first: {}, handlers: [], redraws: [], frames: [] };
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) perf.longtasks.push(e.duration); })
      .observe({ type: "longtask", buffered: true });
  } catch (_) { perf.longtasks = null; }
  const seen = () => {
    for (const [k, sel] of [["signins", "#signins tbody tr[tabindex]"], ["traffic", "#traffic tbody tr[tabindex]"]]) {
      if (!(k in perf.first) && document.querySelector(sel)) {
        const dom = performance.now();
        perf.first[k] = { dom };
        requestAnimationFrame(() => setTimeout(() => { perf.first[k].painted = performance.now(); }, 0));
      }
    }
  };
  new MutationObserver(seen).observe(document, { childList: true, subtree: true });
  const add = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, fn, opts) {
    return add.call(this, type, function (e) {
      const t = performance.now();
      try { return fn.call(this, e); } finally { perf.handlers.push([type, performance.now() - t]); }
    }, opts);
  };
  const st = window.setTimeout;
  window.setTimeout = function (fn, delay, ...rest) {
    if (typeof fn !== "function" || delay !== 150) return st.call(window, fn, delay, ...rest);
    return st.call(window, function () {
      const t = performance.now();
      try { return fn.apply(this, arguments); } finally { perf.redraws.push(performance.now() - t); }
    }, delay, ...rest);
  };
  perf.startFrames = () => {
    perf.frames = []; perf.framing = true;
    let last = performance.now();
    const tick = (now) => { perf.frames.push(now - last); last = now; if (perf.framing) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  };
  perf.waitFor = (sel) => new Promise((resolve) => {
    if (document.querySelector(sel)) return resolve();
    const o = new MutationObserver(() => { if (document.querySelector(sel)) { o.disconnect(); resolve(); } });
    o.observe(document, { childList: true, subtree: true });
  });
  perf.painted = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
})();
"##;

/// The page's answer to `js` (a promise is awaited).
async fn eval(page: &chromiumoxide::Page, js: &str) -> Value {
    page.evaluate(js)
        .await
        .unwrap_or_else(|e| panic!("{js}: {e}"))
        .into_value()
        .unwrap_or(Value::Null)
}

/// Evaluates `js` until it is not null (or two minutes pass).
async fn until(page: &chromiumoxide::Page, what: &str, js: &str) -> Value {
    testkit::devtools::until(page, what, js, Duration::from_secs(120)).await
}

/// Sign-in `i`: one in ten stops after authorize (in progress), one in
/// five fails at redemption (a redirect_uri with a trailing slash), the
/// rest sign in. Returns the exchanges it made.
async fn sign_in(lab: &Lab, i: u64) -> u64 {
    let state = format!("st-{i}");
    let tenant = lab.tenant();
    let Some(code) = lab.authorize(&tenant, &authorize_params(&state, &[])).await else {
        return 1;
    };
    if i.is_multiple_of(10) {
        return 1;
    }
    let mut form = token_form(&code);
    if i % 5 == 1 {
        form[2] = ("redirect_uri", "https://app.test/callback/");
    }
    lab.redeem(&tenant, &form).await;
    2
}

/// A plain request to the app (not a sign-in leg).
async fn browse(lab: &Lab, i: u64) {
    let resp = lab
        .client
        .get(format!("https://app.test/page/{i}?q=item-{}", i % 97))
        .send()
        .await
        .unwrap();
    resp.bytes().await.unwrap();
}

/// Runs `signins` sign-ins, then plain requests until `exchanges` were
/// made, `concurrency` at a time.
async fn fill(lab: &Arc<Lab>, signins: u64, exchanges: u64, concurrency: u64) {
    let next = Arc::new(AtomicU64::new(0));
    let made = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (lab, next, made) = (lab.clone(), next.clone(), made.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= signins {
                    break;
                }
                made.fetch_add(sign_in(&lab, i).await, Ordering::Relaxed);
            }
            while made.fetch_add(1, Ordering::Relaxed) < exchanges {
                browse(&lab, next.fetch_add(1, Ordering::Relaxed)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Signs in and browses (one sign-in per four page loads) until `stop`.
async fn load(lab: Arc<Lab>, stop: Arc<AtomicBool>, concurrency: u64, from: u64) -> u64 {
    let next = Arc::new(AtomicU64::new(from));
    let made = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (lab, next, made, stop) = (lab.clone(), next.clone(), made.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                made.fetch_add(sign_in(&lab, i).await, Ordering::Relaxed);
                for k in 0..4 {
                    browse(&lab, i * 4 + k).await;
                    made.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    made.load(Ordering::Relaxed)
}

fn stats(list: &[f64]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    let mut v = list.to_vec();
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "n={} median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        v.len(),
        pct(0.5),
        pct(0.95),
        v[v.len() - 1]
    )
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect()
}

/// A text filter typed into `input` (`value`): the script's time, until
/// painted, and the rows left.
async fn filter(page: &chromiumoxide::Page, input: &str, value: &str, rows: &str) -> String {
    let v = eval(
        page,
        &format!(
            "(async () => {{ const i = document.getElementById({input:?}); const t0 = performance.now();
              i.value = {value:?}; i.dispatchEvent(new Event('input'));
              const t1 = performance.now(); await __perf.painted();
              return [t1 - t0, performance.now() - t0, document.querySelectorAll({rows:?}).length]; }})()"
        ),
    )
    .await;
    format!(
        "{:.1} ms script, {:.1} ms until painted, {} rows",
        v[0].as_f64().unwrap_or(f64::NAN),
        v[1].as_f64().unwrap_or(f64::NAN),
        v[2]
    )
}

/// The list scrolled to its end: the time until more rows are drawn and
/// painted (the rows before and after).
async fn scrolled(page: &chromiumoxide::Page, rows: &str) -> String {
    let v = eval(
        page,
        &format!(
            "(async () => {{ const n = () => document.querySelectorAll({rows:?}).length; const before = n();
              const t0 = performance.now(); window.scrollTo(0, document.body.scrollHeight);
              const deadline = t0 + 5000;
              while (n() === before && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
              const t1 = performance.now(); await __perf.painted();
              const out = [t1 - t0, performance.now() - t0, before, n()]; window.scrollTo(0, 0); return out; }})()"
        ),
    )
    .await;
    format!(
        "{:.1} ms until drawn, {:.1} ms until painted, {} rows then {}",
        v[0].as_f64().unwrap_or(f64::NAN),
        v[1].as_f64().unwrap_or(f64::NAN),
        v[2],
        v[3]
    )
}

/// Load for `seconds` with the page on `view`, and what the page did.
async fn streaming(
    lab: &Arc<Lab>,
    page: &chromiumoxide::Page,
    seconds: u64,
    concurrency: u64,
    from: u64,
) {
    eval(
        page,
        "__perf.handlers = []; __perf.redraws = []; if (__perf.longtasks) __perf.longtasks = []; __perf.startFrames(); true",
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let load = tokio::spawn(load(lab.clone(), stop.clone(), concurrency, from));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let made = load.await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    // The last chunk and its redraw.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let perf = eval(
        page,
        "__perf.framing = false; ({ handlers: __perf.handlers, redraws: __perf.redraws, longtasks: __perf.longtasks, frames: __perf.frames })",
    )
    .await;
    println!(
        "    load: {made} exchanges in {elapsed:.1} s ({:.0}/s)",
        made as f64 / elapsed
    );
    for kind in ["attempt", "exchanges"] {
        let times: Vec<f64> = perf["handlers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h[0] == kind)
            .filter_map(|h| h[1].as_f64())
            .collect();
        println!("    `{kind}` event handler: {}", stats(&times));
    }
    println!("    redraw (script): {}", stats(&floats(&perf["redraws"])));
    match perf["longtasks"].as_array() {
        Some(_) => println!(
            "    long tasks (>50 ms): {}",
            stats(&floats(&perf["longtasks"]))
        ),
        None => println!("    long tasks: not observable in this Chromium"),
    }
    println!("    frame gaps: {}", stats(&floats(&perf["frames"])));
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let signins = testkit::binary::number_arg(&args, "--signins", 1_000);
    let exchanges = testkit::binary::number_arg(&args, "--exchanges", 10_000);
    let seconds = testkit::binary::number_arg(&args, "--stream-seconds", 10);
    let concurrency = testkit::binary::number_arg(&args, "--concurrency", 4);
    let Some(chromium) = testkit::chromium() else {
        eprintln!("web_scale needs Chromium on PATH");
        std::process::exit(2);
    };

    let web = WebView::new(WebOptions {
        history: signins.max(exchanges) as usize,
        ..WebOptions::default()
    });
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
    let addr = lab.proxy.addr;
    let lab = Arc::new(lab);

    // The traffic list is sighted while a page follows: a stream read to
    // the end while the view fills, as an open page would.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut follow = http
        .get(format!("http://{addr}/api/stream"))
        .header(
            "cookie",
            format!("authlens_token_{}={}", addr.port(), web.token()),
        )
        .send()
        .await
        .unwrap();
    let follower = tokio::spawn(async move { while let Ok(Some(_)) = follow.chunk().await {} });
    let started = Instant::now();
    fill(&lab, signins, exchanges, concurrency.max(8)).await;
    // The last sightings into the store.
    tokio::time::sleep(Duration::from_millis(500)).await;
    follower.abort();
    let counts = web.store().counts();
    println!(
        "filled in {:.1} s: {} sign-ins, {} exchanges kept",
        started.elapsed().as_secs_f64(),
        counts["attempts"],
        counts["exchanges"]
    );

    let profile = tempfile::tempdir().unwrap();
    let (mut browser, events) =
        testkit::devtools::launch(&chromium, profile.path(), Duration::from_secs(120)).await;
    let page = browser.new_page("about:blank").await.unwrap();
    page.evaluate_on_new_document(PROBE).await.unwrap();
    page.goto(web.url(addr)).await.unwrap();

    // The sign-in list, first render.
    let first = until(
        &page,
        "the sign-in list",
        "(() => { const f = __perf.first.signins; return f && f.painted ? f : null })()",
    )
    .await;
    let arrived = |what: &'static str| {
        let page = &page;
        async move {
            eval(
                page,
                &format!("Math.max(...performance.getEntriesByType('resource').filter(r => r.name.endsWith('/api/{what}')).map(r => r.responseEnd))"),
            )
            .await
            .as_f64()
            .unwrap_or(f64::NAN)
        }
    };
    let (signins_json, traffic_json) = (arrived("attempts").await, arrived("exchanges").await);
    let shown = eval(
        &page,
        "document.querySelectorAll('#signins tbody tr[tabindex]').length",
    )
    .await;
    println!(
        "page: sign-in list, {shown} rows shown of {}",
        counts["attempts"]
    );
    println!(
        "  first render from navigation start: {:.0} ms rows in the DOM, {:.0} ms painted (the sign-ins' JSON had arrived at {signins_json:.0} ms, the traffic's at {traffic_json:.0} ms)",
        first["dom"].as_f64().unwrap_or(f64::NAN),
        first["painted"].as_f64().unwrap_or(f64::NAN),
    );
    let longest = eval(
        &page,
        "__perf.longtasks ? Math.max(0, ...__perf.longtasks) : null",
    )
    .await;
    println!("  longest task while loading: {longest} ms");
    let fetches = eval(
        &page,
        "performance.getEntriesByType('resource').filter(r => /\\/api\\/(attempts|exchanges)$/.test(r.name))
           .map(r => [r.name.split('/api/')[1], r.requestStart, r.responseStart - r.requestStart, r.responseEnd - r.responseStart, r.encodedBodySize])",
    )
    .await;
    for f in fetches.as_array().into_iter().flatten() {
        println!(
            "  GET /api/{}: asked at {:.0} ms, first byte after {:.0} ms, body {:.0} ms more ({:.1} MB)",
            f[0].as_str().unwrap_or("?"),
            f[1].as_f64().unwrap_or(f64::NAN),
            f[2].as_f64().unwrap_or(f64::NAN),
            f[3].as_f64().unwrap_or(f64::NAN),
            f[4].as_f64().unwrap_or(f64::NAN) / 1e6
        );
    }
    println!(
        "  text filter \"zzz\" (matches none, every row searched): {}",
        filter(&page, "f-text", "zzz", "#signins tbody tr[tabindex]").await
    );
    println!(
        "  text filter \"mismatch\": {}",
        filter(&page, "f-text", "mismatch", "#signins tbody tr[tabindex]").await
    );
    println!(
        "  filter cleared: {}",
        filter(&page, "f-text", "", "#signins tbody tr[tabindex]").await
    );

    println!(
        "  scrolled to the end: {}",
        scrolled(&page, "#signins tbody tr[tabindex]").await
    );

    // The traffic list, switched to.
    let switched = eval(
        &page,
        "(async () => { const t0 = performance.now(); location.hash = '#/traffic';
          await __perf.waitFor('#traffic tbody tr'); const t1 = performance.now();
          await __perf.painted(); return [t1 - t0, performance.now() - t0,
          document.querySelectorAll('#traffic tbody tr[tabindex]').length]; })()",
    )
    .await;
    println!(
        "page: traffic list, {} rows shown of {}",
        switched[2], counts["exchanges"]
    );
    println!(
        "  first render when switched to: {:.1} ms rows in the DOM, {:.1} ms painted",
        switched[0].as_f64().unwrap_or(f64::NAN),
        switched[1].as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "  text filter \"page/77\": {}",
        filter(&page, "f-traffic", "page/77", "#traffic tbody tr[tabindex]").await
    );
    println!(
        "  text filter \"token\": {}",
        filter(&page, "f-traffic", "token", "#traffic tbody tr[tabindex]").await
    );
    println!(
        "  filter cleared: {}",
        filter(&page, "f-traffic", "", "#traffic tbody tr[tabindex]").await
    );

    // Opened on the traffic list: a reload there.
    page.reload().await.unwrap();
    let first = until(
        &page,
        "the traffic list after a reload",
        "(() => { const f = window.__perf && __perf.first.traffic; return f && f.painted ? f : null })()",
    )
    .await;
    println!(
        "  first render when opened on it, from navigation start: {:.0} ms rows in the DOM, {:.0} ms painted (its JSON had arrived at {:.0} ms)",
        first["dom"].as_f64().unwrap_or(f64::NAN),
        first["painted"].as_f64().unwrap_or(f64::NAN),
        arrived("exchanges").await,
    );

    let from = signins * 10;
    println!("page: traffic list while the stream delivers rows for {seconds} s");
    streaming(&lab, &page, seconds, concurrency, from).await;
    eval(
        &page,
        "location.hash = '#/'; __perf.waitFor('#signins tbody tr').then(() => true)",
    )
    .await;
    println!("page: sign-in list while the stream delivers rows for {seconds} s");
    streaming(&lab, &page, seconds, concurrency, from * 2).await;

    browser.close().await.unwrap();
    let _ = browser.wait().await;
    events.abort();
    if let Ok(lab) = Arc::try_unwrap(lab) {
        lab.stop().await;
    }
}
