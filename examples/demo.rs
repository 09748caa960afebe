//! The authlens demo: a mock Entra ID, an app and the proxy run in-process,
//! and a clean sign-in plus every common failure is replayed through the
//! proxy while the live log flags them, up to the seed error: an
//! AADSTS90056 that nothing on the wire explains. Then the failures that come
//! after the first sign-in works: a refresh token replayed after rotation, a
//! device-code CLI polling too fast, a daemon's client_credentials call with
//! a delegated scope, and a pushed authorization request (PAR) whose
//! request_uri is used twice.
//!
//! `cargo run --example demo` (add `-- --json` to see the JSON lines instead).

use std::time::Duration;

use authlens::config::{Audience, OutputConfig, OutputFlags};
use testkit::lab::{Lab, PUBLIC_CLIENT, WEB_CLIENT, WEB_SECRET, authorize_params, token_form};
use testkit::mock_idp::{Faults, MockIdp};

/// Short enough to show an expired code within seconds.
const DEMO_CODE_LIFETIME: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let mut idp = MockIdp::default_config();
    idp.code_lifetime = DEMO_CODE_LIFETIME;
    // Device codes ask for 1 s between polls, so the demo does not wait long.
    idp.device_interval = Some(1);
    // Scene 11 shows the refusal an IdP with reuse detection (Auth0, Okta)
    // answers a replayed refresh token; Entra itself would accept it.
    idp.refresh_reuse_detection = true;
    // The same output decisions as `authlens --json -` or plain `authlens`,
    // except that the JSON replaces the live log instead of pushing it to
    // stderr.
    let flags = OutputFlags {
        json: json.then(|| "-".into()),
        code_lifetime: Some(DEMO_CODE_LIFETIME),
        no_live_log: json,
        ..OutputFlags::default()
    };
    let mut lab =
        Lab::start_with_output(idp, OutputConfig::decide(&flags, Audience::Terminal)).await;
    println!(
        "authlens demo: proxy on {}, mock Entra ID as login.microsoftonline.com\n  tenant {}, code lifetime {}s",
        lab.proxy.addr,
        lab.tenant(),
        DEMO_CODE_LIFETIME.as_secs()
    );
    let tenant = lab.tenant();

    scene(
        &mut lab,
        "1. A clean sign-in (query mode, PKCE S256)",
        async |lab| {
            let code = lab
                .authorize(&tenant, &authorize_params("demo-clean", &[]))
                .await
                .unwrap();
            lab.redeem(&tenant, &token_form(&code)).await;
        },
    )
    .await;

    scene(
        &mut lab,
        "2. /token with a code authlens never saw issued",
        async |lab| {
            let code = lab.code_outside_proxy();
            let mut form = token_form(&code);
            form.remove(5);
            lab.redeem(&tenant, &form).await;
        },
    )
    .await;

    scene(
        &mut lab,
        "3. The same code redeemed twice (a reload, a retry)",
        async |lab| {
            let code = lab
                .authorize(&tenant, &authorize_params("demo-reuse", &[]))
                .await
                .unwrap();
            lab.redeem(&tenant, &token_form(&code)).await;
            let _ = lab.lines_until_verdict().await;
            lab.redeem(&tenant, &token_form(&code)).await;
        },
    )
    .await;

    scene(
        &mut lab,
        "4. A code redeemed after it expired",
        async |lab| {
            let code = lab
                .authorize(&tenant, &authorize_params("demo-expired", &[]))
                .await
                .unwrap();
            tokio::time::sleep(DEMO_CODE_LIFETIME + Duration::from_millis(500)).await;
            lab.redeem(&tenant, &token_form(&code)).await;
        },
    )
    .await;

    scene(
        &mut lab,
        "5. Redeemed at /common instead of the tenant",
        async |lab| {
            let code = lab
                .authorize(&tenant, &authorize_params("demo-common", &[]))
                .await
                .unwrap();
            lab.redeem("common", &token_form(&code)).await;
        },
    )
    .await;

    scene(
        &mut lab,
        "6. redirect_uri at /token has a trailing slash",
        async |lab| {
            let code = lab
                .authorize(&tenant, &authorize_params("demo-slash", &[]))
                .await
                .unwrap();
            let mut form = token_form(&code);
            form[2] = ("redirect_uri", "https://app.test/callback/");
            lab.redeem(&tenant, &form).await;
        },
    )
    .await;

    scene(
        &mut lab,
        "7. client_id at /token is another app's",
        async |lab| {
            let code = lab
                .authorize(&tenant, &authorize_params("demo-client", &[]))
                .await
                .unwrap();
            let mut form = token_form(&code);
            form[3] = ("client_id", PUBLIC_CLIENT);
            form.remove(4);
            lab.redeem(&tenant, &form).await;
        },
    )
    .await;

    scene(
        &mut lab,
        "8. /token posted as JSON instead of a form, then fixed: the code was not used up",
        async |lab| {
            let code = lab
                .authorize(&tenant, &authorize_params("demo-json", &[]))
                .await
                .unwrap();
            let body: serde_json::Map<String, serde_json::Value> = token_form(&code)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect();
            let _ = lab
                .client
                .post(lab.endpoint(&tenant, "token"))
                .json(&body)
                .send()
                .await;
            let _ = lab.lines_until_verdict().await;
            lab.redeem(&tenant, &token_form(&code)).await;
        },
    )
    .await;

    scene(
        &mut lab,
        "9. The PKCE verifier was regenerated (another instance)",
        async |lab| {
            let code = lab
                .authorize(&tenant, &authorize_params("demo-pkce", &[]))
                .await
                .unwrap();
            let mut form = token_form(&code);
            form[5] = (
                "code_verifier",
                "a-fresh-verifier-from-another-instance-0123456789",
            );
            lab.redeem(&tenant, &form).await;
        },
    )
    .await;

    scene(
        &mut lab,
        "10. AADSTS90056 with nothing wrong on the wire: what authlens checked, what is left",
        async |lab| {
            lab.idp.set_faults(Faults {
                refuse_redemption: Some(90056),
                ..Faults::default()
            });
            let code = lab
                .authorize(&tenant, &authorize_params("demo-90056", &[]))
                .await
                .unwrap();
            lab.redeem(&tenant, &token_form(&code)).await;
            lab.idp.set_faults(Faults::default());
        },
    )
    .await;

    scene(
        &mut lab,
        "11. A rotated refresh token used again (a second tab refreshing at the same time)",
        async |lab| {
            let code = lab
                .authorize(&tenant, &authorize_params("demo-refresh", &[]))
                .await
                .unwrap();
            let (_, tokens) = lab.redeem(&tenant, &token_form(&code)).await;
            let _ = lab.lines_until_verdict().await;
            let rt = tokens["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let refresh = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
                ("client_id", WEB_CLIENT),
                ("client_secret", WEB_SECRET),
            ];
            lab.redeem(&tenant, &refresh).await;
            let _ = lab.lines_until_verdict().await;
            lab.redeem(&tenant, &refresh).await;
        },
    )
    .await;

    scene_until(
        &mut lab,
        "12. A device-code CLI polling faster than the interval",
        |v| v["rule"] == "device-poll-too-fast",
        async |lab| {
            let resp = lab
                .client
                .post(lab.endpoint(&tenant, "devicecode"))
                .form(&[
                    ("client_id", PUBLIC_CLIENT),
                    ("scope", "openid offline_access"),
                ])
                .send()
                .await
                .unwrap();
            let device: serde_json::Value = resp.json().await.unwrap_or_default();
            let code = device["device_code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let poll = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", code.as_str()),
                ("client_id", PUBLIC_CLIENT),
            ];
            lab.redeem(&tenant, &poll).await;
            lab.redeem(&tenant, &poll).await;
        },
    )
    .await;

    scene(
        &mut lab,
        "13. A daemon's client_credentials call asking for a delegated scope",
        async |lab| {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", WEB_CLIENT),
                ("client_secret", WEB_SECRET),
                ("scope", "User.Read"),
            ];
            lab.redeem(&tenant, &form).await;
        },
    )
    .await;

    scene(
        &mut lab,
        "14. PAR: the /authorize URL reloaded, its request_uri used a second time",
        async |lab| {
            let request_uri = lab
                .push(&tenant, &authorize_params("demo-par", &[]))
                .await
                .unwrap();
            let code = lab.authorize_by_uri(&tenant, &request_uri).await.unwrap();
            lab.redeem(&tenant, &token_form(&code)).await;
            let _ = lab.lines_until_verdict().await;
            let _ = lab.authorize_by_uri(&tenant, &request_uri).await;
        },
    )
    .await;

    lab.stop().await;
}

/// Prints a title, plays one scenario and waits until the analysis has
/// delivered its verdict so the log reads in order.
async fn scene(lab: &mut Lab, title: &str, play: impl AsyncFnOnce(&mut Lab)) {
    scene_until(lab, title, |v| v["type"] == "verdict", play).await;
}

/// [`scene`], waiting for the event `until` names instead of a verdict (a
/// device poll refused with `slow_down` ends nothing).
async fn scene_until(
    lab: &mut Lab,
    title: &str,
    until: impl Fn(&serde_json::Value) -> bool,
    play: impl AsyncFnOnce(&mut Lab),
) {
    println!("\n── {title} ──");
    play(lab).await;
    let _ = lab.lines_until(until).await;
    // Give the outlet a moment to print before the next title.
    tokio::time::sleep(Duration::from_millis(150)).await;
}
