//! Headless Chromium driven over the DevTools protocol (chromiumoxide), for
//! the web view's real-browser test and its scale example: one launch and
//! one way of waiting on the page.

use std::path::Path;
use std::time::Duration;

pub use chromiumoxide;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::handler::viewport::Viewport;
use futures_util::StreamExt as _;
use serde_json::Value;

/// Headless Chromium ([`crate::HEADLESS_CHROMIUM`]'s flags) at 1280x720,
/// its profile in `profile`, each protocol request given `request_timeout`;
/// with the task that drives the protocol (it ends with the browser).
pub async fn launch(
    chromium: &Path,
    profile: &Path,
    request_timeout: Duration,
) -> (Browser, tokio::task::JoinHandle<()>) {
    let flags: Vec<String> = crate::HEADLESS_CHROMIUM
        .iter()
        .map(|f| f.trim_start_matches("--").to_owned())
        .collect();
    let config = BrowserConfig::builder()
        .chrome_executable(chromium)
        .user_data_dir(profile)
        .no_sandbox()
        .window_size(1280, 720)
        .viewport(Viewport {
            width: 1280,
            height: 720,
            ..Viewport::default()
        })
        .args(flags)
        .launch_timeout(Duration::from_secs(60))
        .request_timeout(request_timeout)
        .build()
        .expect("a valid browser configuration");
    let (browser, mut handler) = Browser::launch(config).await.expect("Chromium starts");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    (browser, events)
}

/// Evaluates `js` in `page` until it returns a value that is not null:
/// waiting on the page's own state, never on time. A failed evaluation
/// counts as null (the page's context is gone while it navigates); after
/// `within`, fails with what the page shows and the last error.
pub async fn until(page: &chromiumoxide::Page, what: &str, js: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let error = match page.evaluate(js).await {
            Ok(value) => match value.into_value::<Value>() {
                Ok(value) if !value.is_null() => return value,
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            },
            Err(e) => Some(e.to_string()),
        };
        if tokio::time::Instant::now() > deadline {
            let shown = page
                .evaluate("document.body ? document.body.innerText : ''")
                .await
                .ok()
                .and_then(|v| v.into_value::<Value>().ok())
                .unwrap_or(Value::Null);
            panic!(
                "{what}: not within {within:?} (last error: {}); the page shows:\n{shown}",
                error.as_deref().unwrap_or("none")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
