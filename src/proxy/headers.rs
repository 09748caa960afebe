//! Hop-by-hop header handling, in one place.

use http::HeaderMap;
use http::header::{self, HeaderName};

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
