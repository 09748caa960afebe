//! Hop-by-hop header handling, and authlens's own cookies, in one place.

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

/// The name every cookie authlens's own pages (the web view) hand out
/// starts with. A browser sends a cookie to every port of its host, so the
/// apps it reaches through the proxy on the same loopback address would get
/// it too: [`strip_own_cookies`] takes it out of every request before the
/// request is recorded or forwarded.
pub const OWN_COOKIE_PREFIX: &str = "authlens_token_";

/// Removes authlens's own cookies (see [`OWN_COOKIE_PREFIX`]) from the
/// `Cookie` headers, keeping every other pair as sent; a header left empty
/// goes. Requests without such a cookie are not touched.
pub fn strip_own_cookies(headers: &mut HeaderMap) {
    let prefix = OWN_COOKIE_PREFIX.as_bytes();
    let own = |v: &HeaderValue| v.as_bytes().windows(prefix.len()).any(|w| w == prefix);
    if !headers.get_all(header::COOKIE).iter().any(own) {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| {
            let Some(text) = value.to_str().ok().filter(|_| own(value)) else {
                return Some(value.clone());
            };
            let pairs: Vec<&str> = text
                .split(';')
                .map(str::trim)
                .filter(|pair| !pair.is_empty() && !pair.starts_with(OWN_COOKIE_PREFIX))
                .collect();
            if pairs.is_empty() {
                return None;
            }
            HeaderValue::from_str(&pairs.join("; ")).ok()
        })
        .collect();
    headers.remove(header::COOKIE);
    for value in kept {
        headers.append(header::COOKIE, value);
    }
}

/// Removes the headers that describe one connection rather than the message
/// (RFC 9110 §7.6.1): `Connection` and every header it names, plus the fixed
/// list of `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`,
/// `Proxy-Authorization`, `Transfer-Encoding` and `Upgrade`, and `TE` unless
/// it only says `trailers` (gRPC servers require that one end to end).
/// `Trailer` is end-to-end and kept, so trailers survive HTTP/1.1 hops.
/// Framing is re-derived by hyper for the next hop.
///
/// When `keep_upgrade` is set (a WebSocket handshake being relayed),
/// `Connection: upgrade` and `Upgrade` survive so the next hop sees the
/// handshake.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none of them: one pass over the names (compared
    // without hashing) spares the dozen hashed lookups below.
    if !keep_upgrade && !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| !(keep_upgrade && name == header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    let te_trailers_only = headers
        .get_all(header::TE)
        .iter()
        .all(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    if !te_trailers_only {
        headers.remove(header::TE);
    }
    for name in [
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if keep_upgrade {
        headers.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("upgrade"),
        );
    } else {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

/// The headers `strip_hop_by_hop` removes whatever `Connection` says (`TE`
/// only unless it is `trailers`), and `Connection` itself.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TE,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::UPGRADE,
    ]
    .contains(name)
        || name == "keep-alive"
        || name == "proxy-connection"
}

/// True when a request asks to switch protocols (a WebSocket handshake).
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cookies_are_taken_out_and_the_others_kept_as_sent() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; authlens_token_8080=t0k; b=2"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("authlens_token_9090=x"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("c=authlens_token_"),
        );
        strip_own_cookies(&mut h);
        let left: Vec<&str> = h
            .get_all(header::COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(left, ["a=1; b=2", "c=authlens_token_"]);
        // Nothing of ours: untouched, to the byte.
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1;b=2"));
        strip_own_cookies(&mut h);
        assert_eq!(h[header::COOKIE], "a=1;b=2");
    }

    #[test]
    fn strips_listed_and_named_headers() {
        let mut h = HeaderMap::new();
        h.insert("connection", "close, x-secret-hop".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("proxy-authorization", "Basic x".parse().unwrap());
        h.insert("authorization", "Bearer keep".parse().unwrap());
        h.insert("te", "gzip".parse().unwrap());
        h.insert("trailer", "x-checksum".parse().unwrap());
        strip_hop_by_hop(&mut h, false);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["authorization", "trailer"]);

        let mut h = HeaderMap::new();
        h.insert("te", "trailers".parse().unwrap());
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h["te"], "trailers");
    }

    #[test]
    fn each_hop_by_hop_header_alone_is_stripped() {
        for name in [
            "connection",
            "te",
            "transfer-encoding",
            "proxy-authenticate",
            "proxy-authorization",
            "upgrade",
            "keep-alive",
            "proxy-connection",
        ] {
            let mut h = HeaderMap::new();
            h.insert(name, "x".parse().unwrap());
            h.insert("accept", "*/*".parse().unwrap());
            strip_hop_by_hop(&mut h, false);
            let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
            assert_eq!(left, ["accept"], "{name}");
        }
    }

    #[test]
    fn keeps_the_upgrade_handshake_when_asked() {
        let mut h = HeaderMap::new();
        h.insert("connection", "Upgrade, keep-alive".parse().unwrap());
        h.insert("upgrade", "websocket".parse().unwrap());
        assert!(is_upgrade_request(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
    }
}
