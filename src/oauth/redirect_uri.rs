//! Naming the exact difference between two redirect URIs.
//!
//! The rule is byte-identity (RFC 6749 §4.1.3, RFC 9700 §2.1); this module
//! only explains *how* two strings differ (trailing slash, case, scheme,
//! host, port, path, query, percent-encoding) so the message points at the
//! fix, and knows the RFC 8252 §7.3 loopback exception (any port).

use super::params::percent_decode_url;

/// How two redirect URIs differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriDifference {
    /// Aspects in a fixed order: `scheme`, `host`, `port`, `path`, `query`,
    /// `fragment`, `trailing slash`, `case`, `percent-encoding`.
    pub aspects: Vec<&'static str>,
    /// Only the port differs and the host is a loopback address: allowed by
    /// RFC 8252 §7.3, so a warning rather than an error.
    pub loopback_port_only: bool,
}

impl UriDifference {
    /// `"trailing slash"`, `"scheme and host"`, …
    pub fn describe(&self) -> String {
        match self.aspects.as_slice() {
            [] => "bytes".to_owned(),
            [one] => (*one).to_owned(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }
}

/// `None` when the two strings are byte-identical.
pub fn compare(authorize: &str, token: &str) -> Option<UriDifference> {
    if authorize == token {
        return None;
    }
    let whole = |aspect| {
        Some(UriDifference {
            aspects: vec![aspect],
            loopback_port_only: false,
        })
    };
    if authorize.trim_end_matches('/') == token.trim_end_matches('/') {
        return whole("trailing slash");
    }
    if authorize.eq_ignore_ascii_case(token) {
        return whole("case");
    }
    if decoded_equal(authorize, token) {
        return whole("percent-encoding");
    }

    let a = Parts::split(authorize);
    let b = Parts::split(token);
    let mut aspects = Vec::new();
    part(a.scheme, b.scheme, "scheme", &mut aspects);
    part(a.host, b.host, "host", &mut aspects);
    if a.port != b.port {
        note("port", &mut aspects);
    }
    if a.path != b.path && a.path.trim_end_matches('/') == b.path.trim_end_matches('/') {
        note("trailing slash", &mut aspects);
    } else {
        part(a.path, b.path, "path", &mut aspects);
    }
    part(a.query, b.query, "query", &mut aspects);
    part(a.fragment, b.fragment, "fragment", &mut aspects);
    const ORDER: [&str; 9] = [
        "scheme",
        "host",
        "port",
        "path",
        "query",
        "fragment",
        "trailing slash",
        "case",
        "percent-encoding",
    ];
    aspects.sort_by_key(|a| ORDER.iter().position(|o| o == a));
    let loopback_port_only = aspects == ["port"] && is_loopback(a.host);
    Some(UriDifference {
        aspects,
        loopback_port_only,
    })
}

fn note(aspect: &'static str, aspects: &mut Vec<&'static str>) {
    if !aspects.contains(&aspect) {
        aspects.push(aspect);
    }
}

/// Records how one component differs, if it does.
fn part(x: &str, y: &str, name: &'static str, aspects: &mut Vec<&'static str>) {
    if x == y {
        return;
    }
    let aspect = if x.eq_ignore_ascii_case(y) {
        "case"
    } else if decoded_equal(x, y) {
        "percent-encoding"
    } else {
        name
    };
    note(aspect, aspects);
}

/// Equal once percent-decoded (once or twice, to catch double encoding).
fn decoded_equal(a: &str, b: &str) -> bool {
    let (a1, b1) = (percent_decode_url(a), percent_decode_url(b));
    a1 == b1 || percent_decode_url(&a1) == percent_decode_url(&b1)
}

/// True for `localhost`, `127.0.0.0/8` and `[::1]`.
pub fn is_loopback(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host == "[::1]"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A URI cut into its parts without validation.
#[derive(Debug, PartialEq, Eq)]
struct Parts<'a> {
    scheme: &'a str,
    host: &'a str,
    /// The explicit port only: two URIs differ in port when their written
    /// ports differ (`:443` against none counts, as the strings differ).
    port: Option<u16>,
    path: &'a str,
    query: &'a str,
    fragment: &'a str,
}

impl<'a> Parts<'a> {
    fn split(uri: &'a str) -> Parts<'a> {
        let (rest, fragment) = uri.split_once('#').unwrap_or((uri, ""));
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (scheme, rest) = rest.split_once("://").unwrap_or(("", rest));
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p))
                if !h.is_empty() && !p.contains(']') && (!h.contains(':') || h.ends_with(']')) =>
            {
                (h, p.parse().ok())
            }
            _ => (authority, None),
        };
        Parts {
            scheme,
            host,
            port,
            path,
            query,
            fragment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_difference() {
        let cases: &[(&str, &str, &str, bool)] = &[
            (
                "https://app.example/cb",
                "https://app.example/cb/",
                "trailing slash",
                false,
            ),
            (
                "https://app.example/cb",
                "https://APP.example/CB",
                "case",
                false,
            ),
            (
                "https://app.example/cb",
                "http://app.example/cb",
                "scheme",
                false,
            ),
            (
                "https://app.example/cb",
                "https://other.example/cb",
                "host",
                false,
            ),
            (
                "https://app.example/cb",
                "https://app.example:8443/cb",
                "port",
                false,
            ),
            (
                "https://app.example/cb",
                "https://app.example/callback",
                "path",
                false,
            ),
            (
                "https://app.example/cb",
                "https://app.example/cb?x=1",
                "query",
                false,
            ),
            (
                "https://app.example/a%20b",
                "https://app.example/a b",
                "percent-encoding",
                false,
            ),
            (
                "https://app.example/cb",
                "https%3A%2F%2Fapp.example%2Fcb",
                "percent-encoding",
                false,
            ),
            (
                "http://localhost:5000/cb",
                "http://localhost:5001/cb",
                "port",
                true,
            ),
            (
                "http://127.0.0.1:5000/cb",
                "http://127.0.0.1/cb",
                "port",
                true,
            ),
            ("http://[::1]:5000/cb", "http://[::1]:6000/cb", "port", true),
            (
                "http://app.example:5000/cb",
                "https://app.example:5001/cb",
                "scheme and port",
                false,
            ),
            (
                "https://app.example/cb",
                "http://proxy.internal/cb/",
                "scheme, host and trailing slash",
                false,
            ),
        ];
        for (a, b, expected, loopback) in cases {
            let d = compare(a, b).unwrap_or_else(|| panic!("{a} vs {b}"));
            assert_eq!(d.describe(), *expected, "{a} vs {b}");
            assert_eq!(d.loopback_port_only, *loopback, "{a} vs {b}");
        }
        assert_eq!(compare("https://a/cb", "https://a/cb"), None);
    }

    #[test]
    fn garbage_does_not_panic() {
        for (a, b) in [
            ("", "x"),
            (":::", "@@@"),
            ("http://[::1", "http://[::1]:"),
            ("é://ü:9/ä", "x"),
        ] {
            let _ = compare(a, b);
        }
    }
}
