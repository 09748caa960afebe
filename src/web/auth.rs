//! Who may see the web view: the per-run token (constant-time compared),
//! the `Host` values that name this listener (against DNS rebinding) and
//! the `Origin` of state-changing requests (against CSRF).
//!
//! Pure checks on a request head; answering is the caller's job. Requests
//! that reach the view *through* the proxy never get here: the proxy
//! refuses them as loops (see `crate::proxy::local`).

use std::net::SocketAddr;

use http::header::{COOKIE, HOST, ORIGIN};
use http::request::Parts;
use http::{HeaderMap, Method};

/// The per-run secret that opens the view: 32 random bytes, hex.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// A fresh random token.
    pub fn random() -> Token {
        let bytes: [u8; 32] = rand::random();
        Token(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `offered` is this token; the time taken does not depend on
    /// where the first difference is.
    pub fn matches(&self, offered: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), offered.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// The cookie carrying the token. Cookies are not kept apart by port, so
/// the name has the port: two authlens runs do not overwrite each other's.
pub fn cookie_name(listen: SocketAddr) -> String {
    format!("{}{}", crate::proxy::OWN_COOKIE_PREFIX, listen.port())
}

/// The `Set-Cookie` value handing the token to the browser.
pub fn set_cookie(listen: SocketAddr, token: &Token) -> String {
    format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict",
        cookie_name(listen),
        token.as_str()
    )
}

/// Why a request to the view is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` missing or naming something else than this listener.
    Host(Option<String>),
    /// No token, or a wrong one.
    Token,
    /// A state-changing request without a matching `Origin`.
    Origin(Option<String>),
}

/// The `Host` values that name the listener at `listen`: loopback names
/// with its port, and its own address when it is not a wildcard.
pub fn allowed_hosts(listen: SocketAddr) -> Vec<String> {
    let port = listen.port();
    let mut hosts = vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ];
    if !listen.ip().is_unspecified() {
        let own = listen.to_string();
        if !hosts.contains(&own) {
            hosts.push(own);
        }
    }
    hosts
}

/// The host the request names (`Host`, or the authority of an HTTP/2
/// request), lower-cased.
fn request_host(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))
        .map(|h| h.to_ascii_lowercase())
}

/// Checks `Host`, then the token (query `token=` or the cookie), then, for
/// a state-changing method, `Origin`. Returns the host the request named.
pub fn check(parts: &Parts, listen: SocketAddr, token: &Token) -> Result<String, Refusal> {
    let host = request_host(parts);
    let Some(host) = host.filter(|h| allowed_hosts(listen).contains(h)) else {
        return Err(Refusal::Host(request_host(parts)));
    };
    let offered_query = query_token(parts.uri.query());
    let offered_cookie = cookie_token(&parts.headers, &cookie_name(listen));
    let ok = offered_query
        .iter()
        .chain(&offered_cookie)
        .any(|t| token.matches(t));
    if !ok {
        return Err(Refusal::Token);
    }
    if changes_state(&parts.method) {
        let origin = parts
            .headers
            .get(ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if origin.as_deref().map(str::to_ascii_lowercase) != Some(format!("http://{host}")) {
            return Err(Refusal::Origin(origin));
        }
    }
    Ok(host)
}

/// Methods that may change something (RFC 9110 §9.2.1: not safe).
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The `token` query parameter, if given.
pub fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "token")
        .map(|(_, value)| value.to_owned())
}

fn cookie_token(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            builder = builder.header(*n, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_token_is_compared_whole() {
        let t = Token::random();
        assert_eq!(t.as_str().len(), 64);
        assert!(t.matches(t.as_str()));
        assert!(!t.matches(&t.as_str()[..63]));
        assert!(!t.matches(""));
        let mut other = t.as_str().to_owned();
        other.replace_range(63.., if other.ends_with('0') { "1" } else { "0" });
        assert!(!t.matches(&other));
        assert_ne!(Token::random().as_str(), t.as_str());
    }

    #[test]
    fn host_token_and_origin_are_each_required() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let t = Token::random();
        let q = format!("/?token={}", t.as_str());
        let cookie = format!("a=b; authlens_token_8080={}", t.as_str());
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "LOCALHOST:8080",
        ] {
            assert!(
                check(&parts("GET", &q, &[("host", host)]), listen, &t).is_ok(),
                "{host}"
            );
        }
        for host in ["evil.test:8080", "127.0.0.1:9090", "localhost", "127.0.0.1"] {
            assert_eq!(
                check(&parts("GET", &q, &[("host", host)]), listen, &t),
                Err(Refusal::Host(Some(host.into())))
            );
        }
        assert_eq!(
            check(&parts("GET", &q, &[]), listen, &t),
            Err(Refusal::Host(None))
        );
        let host = ("host", "127.0.0.1:8080");
        assert_eq!(
            check(&parts("GET", "/", &[host]), listen, &t),
            Err(Refusal::Token)
        );
        assert_eq!(
            check(&parts("GET", "/?token=nope", &[host]), listen, &t),
            Err(Refusal::Token)
        );
        assert!(
            check(
                &parts("GET", "/api/x", &[host, ("cookie", &cookie)]),
                listen,
                &t
            )
            .is_ok()
        );
        // Another run's cookie (another port) does not open this one.
        let other = format!("authlens_token_9090={}", t.as_str());
        assert_eq!(
            check(&parts("GET", "/", &[host, ("cookie", &other)]), listen, &t),
            Err(Refusal::Token)
        );
        let post = |headers: &[(&str, &str)]| check(&parts("POST", &q, headers), listen, &t);
        assert_eq!(post(&[host]), Err(Refusal::Origin(None)));
        assert_eq!(
            post(&[host, ("origin", "http://evil.test")]),
            Err(Refusal::Origin(Some("http://evil.test".into())))
        );
        assert!(post(&[host, ("origin", "http://127.0.0.1:8080")]).is_ok());
    }

    #[test]
    fn the_configured_address_is_a_host_too() {
        let hosts = allowed_hosts("192.168.1.5:8080".parse().unwrap());
        assert!(hosts.contains(&"192.168.1.5:8080".to_owned()));
        let any = allowed_hosts("0.0.0.0:8080".parse().unwrap());
        assert_eq!(any.len(), 3);
    }
}
