//! The live terminal log: one line per leg, findings indented under the leg
//! that triggered them, a one-line verdict when an attempt completes.
//!
//! Pure: event in, lines out (without newlines). Whether to colour (a
//! terminal, NO_COLOR) is decided once, in `config`, and passed in
//! [`LiveLogOptions`].

use std::fmt::Write as _;

use time::OffsetDateTime;

use crate::oauth::event::{
    AuthorizeEvent, CodeEvent, DecodedToken, Event, Finding, Outcome, Severity, TokenEvent,
    TokenResponseEvent, Verdict, human_duration,
};
use crate::oauth::jwt::Jwt;

/// How the log looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveLogOptions {
    /// ANSI colours (decided once in `config::OutputConfig::decide`).
    pub color: bool,
    /// Extra facts on each leg, and the evidence under each finding.
    pub verbose: bool,
}

/// The lines for one event.
pub fn render(event: &Event, options: LiveLogOptions) -> Vec<String> {
    let paint = Paint(options.color);
    match event {
        Event::Authorize(e) => vec![authorize(e, options, paint)],
        Event::Code(e) => vec![code(e, options, paint)],
        Event::Token(e) => vec![token(e, options, paint)],
        Event::TokenResponse(e) => {
            let mut lines = vec![token_response(e, options, paint)];
            lines.extend(token_claims(e, options, paint));
            lines
        }
        Event::Finding(f) => finding(f, options, paint),
        Event::Verdict(v) => vec![verdict(v, paint)],
    }
}

const BOLD: &str = "1";
const DIM: &str = "2";
const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const CYAN: &str = "36";

#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn on(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// `10:02:11.250 #3   token-response  ` — time, attempt, leg name.
fn head(time: OffsetDateTime, attempt: Option<u64>, leg: &str, paint: Paint) -> String {
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}",
        time.hour(),
        time.minute(),
        time.second(),
        time.millisecond()
    );
    let attempt = attempt.map_or_else(|| "--".to_owned(), |a| format!("#{a}"));
    format!(
        "{} {:<4} {} ",
        paint.on(DIM, &time),
        attempt,
        paint.on(BOLD, &format!("{leg:<15}"))
    )
}

fn push(line: &mut String, label: &str, value: Option<&str>) {
    match (value, label) {
        (Some(v), "") => {
            let _ = write!(line, "  {v}");
        }
        (Some(v), _) => {
            let _ = write!(line, "  {label} {v}");
        }
        (None, _) => {}
    }
}

fn authorize(e: &AuthorizeEvent, options: LiveLogOptions, paint: Paint) -> String {
    let mut line = head(e.time, Some(e.attempt.0), "authorize", paint);
    let _ = write!(line, "{}  client {}", e.host, e.client_id);
    let mut where_ = e.provider.to_owned();
    for part in [e.version, e.tenant.as_deref(), e.policy.as_deref()]
        .into_iter()
        .flatten()
    {
        where_.push(' ');
        where_.push_str(part);
    }
    let _ = write!(line, "  {where_}");
    push(&mut line, "→", e.redirect_uri.as_deref());
    push(&mut line, "mode", e.response_mode.as_deref());
    push(&mut line, "pkce", e.pkce_method.as_deref());
    push(&mut line, "state", e.state.as_deref());
    if options.verbose {
        push(&mut line, "response_type", Some(&e.response_type));
        push(&mut line, "scope", e.scope.as_deref());
        push(&mut line, "nonce", e.nonce.as_deref());
    }
    line
}

fn code(e: &CodeEvent, options: LiveLogOptions, paint: Paint) -> String {
    let leg = if e.error.is_some() {
        "authorize-error"
    } else {
        "code"
    };
    let mut line = head(e.time, e.attempt.map(|a| a.0), leg, paint);
    line.push_str(&e.host);
    push(&mut line, "client", e.client_id.as_deref());
    if let Some(error) = &e.error {
        let mut text = error.clone();
        for c in &e.error_codes {
            text.push(' ');
            text.push_str(c);
        }
        let _ = write!(line, "  {}", paint.on(RED, &text));
    }
    push(&mut line, "", e.code.as_deref());
    push(&mut line, "→", e.redirect_to.as_deref());
    let mut how = vec![
        e.mode.to_owned(),
        format!("paired by {}", e.pairing.as_str()),
    ];
    if let Some(d) = e.since_authorize {
        how.push(format!("{} after authorize", human_duration(d)));
    }
    let _ = write!(line, "  ({})", how.join(", "));
    if options.verbose {
        push(&mut line, "state", e.state.as_deref());
        push(&mut line, "iss", e.iss.as_deref());
        push(&mut line, "description", e.error_description.as_deref());
    }
    line
}

fn token(e: &TokenEvent, options: LiveLogOptions, paint: Paint) -> String {
    let mut line = head(e.time, e.attempt.map(|a| a.0), "token", paint);
    line.push_str(&e.host);
    push(&mut line, "client", e.client_id.as_deref());
    push(&mut line, "", e.code.as_deref());
    if let Some(age) = e.code_age {
        let _ = write!(line, " (age {})", human_duration(age));
    }
    let _ = write!(line, "  {}", e.method);
    if !e.client_auth.is_empty() {
        push(&mut line, "auth", Some(&e.client_auth.join("+")));
    }
    push(&mut line, "pkce", e.code_verifier.as_deref());
    if options.verbose {
        push(&mut line, "endpoint", Some(&e.endpoint));
        push(&mut line, "content-type", e.content_type.as_deref());
        push(&mut line, "grant_type", e.grant_type.as_deref());
        push(&mut line, "redirect_uri", e.redirect_uri.as_deref());
        push(&mut line, "scope", e.scope.as_deref());
    }
    line
}

fn token_response(e: &TokenResponseEvent, options: LiveLogOptions, paint: Paint) -> String {
    let mut line = head(e.time, e.attempt.map(|a| a.0), "token-response", paint);
    line.push_str(&e.host);
    push(&mut line, "client", e.client_id.as_deref());
    let failed = e.failed;
    let mut status = e.status.to_string();
    if let Some(error) = &e.error {
        status.push(' ');
        status.push_str(error);
    }
    for c in &e.error_codes {
        status.push(' ');
        status.push_str(c);
    }
    let _ = write!(
        line,
        "  {}",
        paint.on(if failed { RED } else { GREEN }, &status)
    );
    if !e.tokens.is_empty() {
        let _ = write!(line, "  {}", e.tokens.join(" "));
    }
    if let Some(d) = e.elapsed {
        let _ = write!(line, "  ({})", human_duration(d));
    }
    if options.verbose {
        push(&mut line, "scope", e.scope.as_deref());
        push(&mut line, "expires_in", e.expires_in.as_deref());
        push(&mut line, "trace_id", e.trace_id.as_deref());
        push(&mut line, "correlation_id", e.correlation_id.as_deref());
        push(&mut line, "description", e.error_description.as_deref());
    }
    line
}

/// Under a token response: by default one line saying who the tokens are
/// for and until when; with `--verbose`, each token's header and claims.
fn token_claims(e: &TokenResponseEvent, options: LiveLogOptions, paint: Paint) -> Vec<String> {
    if e.decoded.is_empty() {
        return Vec::new();
    }
    let unverified = paint.on(DIM, "(signature not verified)");
    if !options.verbose {
        return vec![format!(
            "      {} {}  {unverified}",
            paint.on(DIM, "tokens:"),
            token_summary(&e.decoded, e.time)
        )];
    }
    let mut lines = Vec::new();
    for d in &e.decoded {
        match &d.jwt {
            Ok(jwt) => {
                let mut head = format!("      {}  JWT", d.shown);
                push(&mut head, "alg", jwt.alg.as_deref());
                push(&mut head, "kid", jwt.kid.as_deref());
                push(&mut head, "typ", jwt.typ.as_deref());
                let _ = write!(head, "  {unverified}");
                lines.push(head);
                lines.push(format!("        {}", claims_line(jwt)));
            }
            Err(err) => lines.push(format!(
                "      {}  {}",
                d.shown,
                paint.on(YELLOW, &format!("cannot read: {err}"))
            )),
        }
    }
    lines
}

/// `sub 8kq…  aud 1111… (id_token), https://graph… (access_token)  expires 11:00:00 (in 60 min)`:
/// the user (the id_token's subject), who each token is for, and when the
/// access token (else the id_token) expires.
fn token_summary(decoded: &[DecodedToken], now: OffsetDateTime) -> String {
    let readable: Vec<(&str, &Jwt)> = decoded
        .iter()
        .filter_map(|d| d.jwt.as_ref().ok().map(|jwt| (d.kind, jwt)))
        .collect();
    let first = |kinds: [&str; 2], pick: &dyn Fn(&Jwt) -> bool| {
        kinds.into_iter().find_map(|kind| {
            readable
                .iter()
                .find(|(k, jwt)| *k == kind && pick(jwt))
                .map(|(_, jwt)| *jwt)
        })
    };
    let mut parts = Vec::new();
    if let Some(sub) =
        first(["id_token", "access_token"], &|j| j.sub.is_some()).and_then(|j| j.sub.as_deref())
    {
        parts.push(format!("sub {sub}"));
    }
    let audiences: Vec<String> = readable
        .iter()
        .filter(|(_, jwt)| !jwt.aud.is_empty())
        .map(|(kind, jwt)| format!("{} ({kind})", jwt.aud.join(",")))
        .collect();
    if !audiences.is_empty() {
        parts.push(format!("aud {}", audiences.join(", ")));
    }
    if let Some(exp) = first(["access_token", "id_token"], &|j| j.exp.is_some()).and_then(|j| j.exp)
    {
        let left = exp - now;
        let when = if left.is_negative() {
            format!("expired {} ago", human_duration(left.unsigned_abs()))
        } else {
            format!("in {}", human_duration(left.unsigned_abs()))
        };
        parts.push(format!(
            "expires {} ({when})",
            crate::oauth::event::clock(exp.to_offset(now.offset()))
        ));
    }
    for d in decoded {
        if let Err(err) = &d.jwt {
            parts.push(format!("{} unreadable ({err})", d.kind));
        }
    }
    parts.join("  ")
}

/// Every claim a developer checks, times in RFC 3339.
fn claims_line(jwt: &Jwt) -> String {
    let time = |t: Option<OffsetDateTime>| t.map(crate::oauth::event::rfc3339);
    let mut line = String::new();
    push(&mut line, "iss", jwt.iss.as_deref());
    if !jwt.aud.is_empty() {
        push(&mut line, "aud", Some(&jwt.aud.join(",")));
    }
    push(&mut line, "tid", jwt.tid.as_deref());
    push(&mut line, "oid", jwt.oid.as_deref());
    push(&mut line, "sub", jwt.sub.as_deref());
    push(&mut line, "scp", jwt.scp.as_deref());
    if !jwt.roles.is_empty() {
        push(&mut line, "roles", Some(&jwt.roles.join(",")));
    }
    push(&mut line, "exp", time(jwt.exp).as_deref());
    push(&mut line, "iat", time(jwt.iat).as_deref());
    push(&mut line, "nbf", time(jwt.nbf).as_deref());
    push(&mut line, "nonce", jwt.nonce.as_deref());
    line.trim_start().to_owned()
}

fn finding(f: &Finding, options: LiveLogOptions, paint: Paint) -> Vec<String> {
    let (mark, colour) = match f.severity {
        Severity::Error => ("✖ error", RED),
        Severity::Warning => ("▲ warning", YELLOW),
        Severity::Info => ("• info", CYAN),
    };
    let field = f
        .field
        .as_deref()
        .map(|x| format!(" [{x}]"))
        .unwrap_or_default();
    let mut lines = vec![
        format!(
            "    {} {}{field}: {}",
            paint.on(colour, mark),
            paint.on(BOLD, f.rule.id()),
            f.message
        ),
        format!("      {} {}", paint.on(DIM, "fix:"), f.fix),
    ];
    if options.verbose && !f.evidence.is_empty() {
        let evidence = serde_json::Value::Object(f.evidence.clone()).to_string();
        lines.push(format!("      {} {evidence}", paint.on(DIM, "evidence:")));
    }
    lines
}

fn verdict(v: &Verdict, paint: Paint) -> String {
    let mut line = head(v.time, v.attempt.map(|a| a.0), "verdict", paint);
    let (mark, colour) = match (v.outcome, v.errors + v.warnings) {
        (Outcome::SignedIn, 0) => ("✔", GREEN),
        (Outcome::SignedIn, _) => ("✔", YELLOW),
        (Outcome::Failed, _) => ("✖", RED),
    };
    line.push_str(&paint.on(colour, &format!("{mark} {}", v.summary)));
    if let Some(d) = v.duration {
        let _ = write!(line, "  ({} since authorize)", human_duration(d));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::analyzer::{Analyzer, AnalyzerConfig};
    use crate::oauth::testing::ex;

    fn sign_in() -> Vec<Event> {
        let mut analyzer = Analyzer::new(AnalyzerConfig::default());
        let mut events = analyzer.observe(
            &ex("GET", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?response_type=code&client_id=app-1&redirect_uri=https%3A%2F%2Fapp%2Fcb&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
                .build(),
        );
        events.extend(
            analyzer.observe(
                &ex(
                    "POST",
                    "https://login.microsoftonline.com/contoso.onmicrosoft.com/login",
                )
                .at(1.5)
                .redirect("https://app/cb?code=abc&state=s")
                .build(),
            ),
        );
        events.extend(analyzer.observe(
            &ex("POST", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
                .at(2.0)
                .form("grant_type=authorization_code&code=abc&client_id=app-1&redirect_uri=https%3A%2F%2Fapp%2Fcb%2F&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
                .json(200, r#"{"access_token":"at","token_type":"Bearer"}"#)
                .build(),
        ));
        events
    }

    fn plain(events: &[Event], verbose: bool) -> Vec<String> {
        let options = LiveLogOptions {
            color: false,
            verbose,
        };
        events.iter().flat_map(|e| render(e, options)).collect()
    }

    #[test]
    fn one_line_per_leg_findings_indented_and_a_verdict() {
        let lines = plain(&sign_in(), false);
        let expected = [
            "10:00:00.000 #1   authorize       login.microsoftonline.com  client app-1  entra v2.0 contoso.onmicrosoft.com  → https://app/cb  pkce S256  state s",
            "10:00:01.600 #1   code            login.microsoftonline.com  client app-1  code#ba7816  → https://app/cb  (query, paired by state, 1.6 s after authorize)",
            "10:00:02.000 #1   token           login.microsoftonline.com  client app-1  code#ba7816 (age 400 ms)  POST  pkce code_verifier#",
        ];
        for (line, want) in lines.iter().zip(expected) {
            assert!(line.starts_with(want), "\n got: {line}\nwant: {want}");
        }
        assert!(lines[3].starts_with("    ✖ error param-mismatch [redirect_uri]: redirect_uri differs from /authorize (trailing slash)"), "{}", lines[3]);
        assert!(lines[4].starts_with("      fix: "), "{}", lines[4]);
        assert!(lines[5].starts_with("10:00:02.100 #1   token-response  login.microsoftonline.com  client app-1  200  access_token#"), "{}", lines[5]);
        assert!(lines[6].starts_with("10:00:02.100 #1   verdict         ✔ signed in: tokens issued, but authlens found 1 error"), "{}", lines[6]);
        assert_eq!(lines.len(), 7);
        assert!(lines.iter().all(|l| !l.contains('\x1b')));
    }

    #[test]
    fn verbose_adds_evidence_and_colour_adds_ansi() {
        let events = sign_in();
        let verbose = plain(&events, true);
        assert!(
            verbose
                .iter()
                .any(|l| l.trim_start().starts_with("evidence: {"))
        );
        assert!(verbose[0].contains("response_type code"));
        let coloured: Vec<String> = events
            .iter()
            .flat_map(|e| {
                render(
                    e,
                    LiveLogOptions {
                        color: true,
                        verbose: false,
                    },
                )
            })
            .collect();
        assert!(coloured[3].contains("\x1b[31m✖ error\x1b[0m"));
    }

    fn token_response_with(decoded: Vec<DecodedToken>) -> Event {
        use crate::oauth::testing::T0;
        Event::TokenResponse(TokenResponseEvent {
            time: T0,
            exchange: 3,
            attempt: Some(crate::oauth::AttemptId(1)),
            host: "login.microsoftonline.com".into(),
            client_id: Some("app-1".into()),
            status: 200,
            failed: false,
            error: None,
            error_description: None,
            error_codes: Vec::new(),
            trace_id: None,
            correlation_id: None,
            tokens: vec!["id_token#e119ca".into()],
            token_type: Some("Bearer".into()),
            scope: None,
            expires_in: None,
            decoded,
            elapsed: None,
        })
    }

    #[test]
    fn token_claims_one_line_by_default_and_in_full_with_verbose() {
        use crate::oauth::jwt::{JwtError, decode};
        use crate::oauth::testing::jwt;
        let token = jwt(&serde_json::json!({
            "iss": "https://login.microsoftonline.com/t-1/v2.0", "aud": "app-1", "tid": "t-1",
            "oid": "o-1", "sub": "s-1", "nonce": "n-1", "roles": ["A", "B"],
            "exp": 1714561200, "iat": 1714557600, "nbf": 1714557600,
        }));
        let event = token_response_with(vec![
            DecodedToken {
                kind: "id_token",
                shown: "id_token#e119ca".into(),
                jwt: decode(&token),
            },
            DecodedToken {
                kind: "access_token",
                shown: "access_token#65e00d".into(),
                jwt: Err(JwtError::Base64("payload")),
            },
        ]);
        let lines = plain(std::slice::from_ref(&event), false);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert_eq!(
            lines[1],
            "      tokens: sub s-1  aud app-1 (id_token)  expires 11:00:00 (in 60 min)  access_token unreadable (the JWT payload is not valid base64url)  (signature not verified)"
        );
        let lines = plain(std::slice::from_ref(&event), true);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert_eq!(
            lines[1],
            "      id_token#e119ca  JWT  alg RS256  kid k-1  typ JWT  (signature not verified)"
        );
        assert_eq!(
            lines[2],
            "        iss https://login.microsoftonline.com/t-1/v2.0  aud app-1  tid t-1  oid o-1  sub s-1  roles A,B  exp 2024-05-01T11:00:00Z  iat 2024-05-01T10:00:00Z  nbf 2024-05-01T10:00:00Z  nonce n-1"
        );
        assert!(
            lines[3].contains("access_token#65e00d  cannot read:"),
            "{}",
            lines[3]
        );
        assert!(!lines.concat().contains(&token));
        // Nothing decoded (an error response, opaque tokens): no extra line.
        assert_eq!(plain(&[token_response_with(Vec::new())], false).len(), 1);
    }

    #[test]
    fn token_summary_prefers_the_user_s_subject_and_the_access_token_s_expiry() {
        use crate::oauth::jwt::Jwt;
        use crate::oauth::testing::T0;
        let at = |secs: i64| Some(T0 + time::Duration::seconds(secs));
        let decoded = vec![
            DecodedToken {
                kind: "access_token",
                shown: "access_token#1".into(),
                jwt: Ok(Jwt {
                    sub: Some("api-pairwise".into()),
                    aud: vec!["https://graph.microsoft.com".into()],
                    exp: at(-300),
                    ..Jwt::default()
                }),
            },
            DecodedToken {
                kind: "id_token",
                shown: "id_token#2".into(),
                jwt: Ok(Jwt {
                    sub: Some("user".into()),
                    aud: vec!["app-1".into()],
                    exp: at(3600),
                    ..Jwt::default()
                }),
            },
        ];
        assert_eq!(
            token_summary(&decoded, T0),
            "sub user  aud https://graph.microsoft.com (access_token), app-1 (id_token)  expires 09:55:00 (expired 5 min ago)"
        );
    }
}
