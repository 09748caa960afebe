//! Entra's SPA Origin rules (OAUTH.md §6): a redemption that carries an
//! `Origin` header is a browser redemption, allowed only for a redirect URI
//! registered as a single-page application and never with a client secret;
//! a code issued for a SPA redirect URI must be redeemed that way. When
//! Entra refuses for these reasons (AADSTS9002326, 9002327, 700025), the
//! `idp-error` finding says what the wire shows and which registration to
//! change. It never adds a finding of its own.

use serde_json::json;

use super::Draft;
use crate::oauth::message::{TokenRequest, TokenResponse};

/// `draft` (the `idp-error` of a refused redemption) confirmed from the
/// request's `Origin` header and credentials when Entra answered one of the
/// SPA Origin codes; any other refusal comes back unchanged.
pub fn spa_origin(
    mut draft: Draft,
    request: &TokenRequest,
    answer: &TokenResponse,
    redirect_uri: Option<&str>,
) -> Draft {
    let has = |code: &str| answer.error_codes.iter().any(|c| c == code);
    let origin = request.origin.as_deref();
    let methods = request.client_auth_methods();
    let secret = methods.first().copied();
    let uri = redirect_uri
        .map(|u| format!("`{u}`"))
        .unwrap_or_else(|| "the redirect URI".to_owned());
    let (why, fix) = match (origin, secret) {
        (Some(origin), Some(method)) if has("AADSTS9002326") || has("AADSTS700025") => (
            format!(
                "the request carried `Origin: {origin}` and a client credential ({method}), so Entra treated it as a browser redemption, where a credential is refused{}",
                if has("AADSTS9002326") {
                    "; the redirect URI is registered as Web"
                } else {
                    ""
                }
            ),
            format!(
                "A browser app must not hold a secret: register {uri} under 'Single-page application' and redeem with PKCE only, without the credential. If the app really is a server, redeem on the server, where no Origin header is sent."
            ),
        ),
        (Some(origin), None) if has("AADSTS9002326") => (
            format!(
                "the request carried `Origin: {origin}`, so Entra treated it as a browser redemption; the redirect URI is registered as Web (or mobile/desktop)"
            ),
            format!(
                "In the app registration (Authentication), move {uri} from the Web platform to 'Single-page application'; or, if a server should redeem, send the code to the server and redeem it there, without an Origin header."
            ),
        ),
        (None, _) if has("AADSTS9002327") => (
            "the request carried no `Origin` header, so Entra treated it as a server-side redemption; the redirect URI is registered as a single-page application".to_owned(),
            format!(
                "Redeem the code in the browser that obtained it (msal-browser does), or register {uri} under the Web platform (with a client secret) for server-side redemption."
            ),
        ),
        _ => return draft,
    };
    let head = draft
        .message
        .split_once(" — ")
        .map_or(draft.message.as_str(), |(head, _)| head)
        .to_owned();
    draft.message = format!("{head} — confirmed from the wire: {why}");
    draft.gist = why;
    draft.fix = fix;
    draft.evidence.insert(
        "origin".into(),
        json!({"header": origin, "client_auth": methods}),
    );
    draft
}
