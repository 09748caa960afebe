//! The environment `authlens run` gives its command so that common runtimes
//! send their traffic through the proxy and trust its CA. A pure plan from
//! the proxy address, the trust files and the current environment; applying
//! it is [`super::launch`]'s job.

use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Variables whose file replaces the client's whole trust list (or, for
/// NODE_EXTRA_CA_CERTS and DENO_CERT, adds to it): all get the bundle of
/// the system CAs plus the authlens CA, so hosts that are not intercepted
/// (`--passthrough`) still verify.
pub const BUNDLE_VARIABLES: &[&str] = &[
    "SSL_CERT_FILE", // OpenSSL-based clients: Python ssl/httpx/urllib, Ruby, PHP, .NET and Go on Linux
    "REQUESTS_CA_BUNDLE", // Python requests (and pip)
    "CURL_CA_BUNDLE", // curl, Python requests' fallback
    "NODE_EXTRA_CA_CERTS", // Node.js, added to its bundled roots
    "GIT_SSL_CAINFO", // git over HTTPS
    "CARGO_HTTP_CAINFO", // cargo
    "AWS_CA_BUNDLE", // AWS CLI and SDKs
    "DENO_CERT",     // Deno
];

/// The proxy variables, in both cases: tools disagree on which they read.
pub const PROXY_VARIABLES: &[&str] = &["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"];

/// The two spellings of the bypass list.
pub const NO_PROXY_VARIABLES: &[&str] = &["NO_PROXY", "no_proxy"];

/// Password of the generated Java trust store. It protects nothing (the
/// store holds public certificates only); Java's own default is the same.
pub const JAVA_TRUSTSTORE_PASSWORD: &str = "changeit";

/// Where the trust files for one run are.
#[derive(Debug, Clone)]
pub struct TrustPaths {
    /// System CAs plus the authlens CA, PEM.
    pub bundle_pem: PathBuf,
    /// The same certificates as a PKCS#12 trust store for Java.
    pub java_truststore: PathBuf,
    /// The Node.js preload that routes fetch and http/https through the proxy.
    pub node_preload: PathBuf,
}

/// One change to the child's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvChange {
    Set(String, OsString),
    Remove(String),
}

/// The environment changes for one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientEnv {
    pub changes: Vec<EnvChange>,
}

impl ClientEnv {
    /// The value this plan gives `name`: `Some(None)` when it removes it,
    /// `None` when it leaves it alone.
    pub fn get(&self, name: &str) -> Option<Option<&OsStr>> {
        self.changes.iter().rev().find_map(|c| match c {
            EnvChange::Set(n, v) if n == name => Some(Some(v.as_os_str())),
            EnvChange::Remove(n) if n == name => Some(None),
            _ => None,
        })
    }

    /// Builds the plan. `current` looks up the environment as it is now
    /// (existing NODE_OPTIONS, JAVA_TOOL_OPTIONS and NO_PROXY are extended,
    /// not replaced).
    pub fn plan(
        proxy: SocketAddr,
        trust: &TrustPaths,
        current: impl Fn(&str) -> Option<OsString>,
    ) -> ClientEnv {
        let mut changes = Vec::new();
        let proxy_url = format!("http://{proxy}");
        for name in PROXY_VARIABLES {
            changes.push(EnvChange::Set(name.to_string(), proxy_url.clone().into()));
        }

        // Loopback entries in NO_PROXY would hide `http://localhost:3000/callback`.
        // Dropping them is only right when the proxy itself is on this
        // machine: a remote proxy cannot reach the client's loopback.
        let mut bypass: Vec<String> = Vec::new();
        for name in NO_PROXY_VARIABLES {
            if let Some(value) = current(name) {
                for entry in value.to_string_lossy().split([',', ' ']) {
                    let entry = entry.trim();
                    if !entry.is_empty() && !bypass.iter().any(|e| e == entry) {
                        bypass.push(entry.to_string());
                    }
                }
            }
        }
        if proxy.ip().is_loopback() {
            bypass.retain(|e| !is_loopback_entry(e));
        }
        for name in NO_PROXY_VARIABLES {
            changes.push(if bypass.is_empty() {
                EnvChange::Remove(name.to_string())
            } else {
                EnvChange::Set(name.to_string(), bypass.join(",").into())
            });
        }

        for name in BUNDLE_VARIABLES {
            changes.push(EnvChange::Set(
                name.to_string(),
                trust.bundle_pem.clone().into_os_string(),
            ));
        }

        let node = append_option(
            current("NODE_OPTIONS"),
            &format!("--require {}", quote(&trust.node_preload)),
        );
        changes.push(EnvChange::Set("NODE_OPTIONS".into(), node));

        let java = java_options(proxy, trust, &bypass);
        changes.push(EnvChange::Set(
            "JAVA_TOOL_OPTIONS".into(),
            append_option(current("JAVA_TOOL_OPTIONS"), &java),
        ));
        ClientEnv { changes }
    }
}

/// The `-D` options that make Java's `HttpURLConnection` and `HttpClient`
/// use the proxy and trust the generated store.
fn java_options(proxy: SocketAddr, trust: &TrustPaths, bypass: &[String]) -> String {
    let host = proxy.ip().to_string();
    let port = proxy.port();
    // Java bypasses localhost and 127.* unless http.nonProxyHosts is set,
    // and appends those defaults to any non-empty value: only an empty value
    // sends loopback through the proxy.
    let non_proxy = bypass
        .iter()
        .map(|e| java_host_pattern(e))
        .collect::<Vec<_>>()
        .join("|");
    [
        format!("-Dhttps.proxyHost={host}"),
        format!("-Dhttps.proxyPort={port}"),
        format!("-Dhttp.proxyHost={host}"),
        format!("-Dhttp.proxyPort={port}"),
        format!("-Dhttp.nonProxyHosts={non_proxy}"),
        format!(
            "-Djavax.net.ssl.trustStore={}",
            quote(&trust.java_truststore)
        ),
        "-Djavax.net.ssl.trustStoreType=PKCS12".to_string(),
        format!("-Djavax.net.ssl.trustStorePassword={JAVA_TRUSTSTORE_PASSWORD}"),
    ]
    .join(" ")
}

/// A NO_PROXY entry in Java's `http.nonProxyHosts` syntax (`*.corp.example`).
fn java_host_pattern(entry: &str) -> String {
    let host = strip_port(entry);
    match host.strip_prefix('.') {
        Some(domain) => format!("*.{domain}"),
        None => host.to_string(),
    }
}

/// `current` followed by `extra`, space-separated.
fn append_option(current: Option<OsString>, extra: &str) -> OsString {
    match current.filter(|c| !c.is_empty()) {
        Some(mut value) => {
            value.push(" ");
            value.push(extra);
            value
        }
        None => extra.into(),
    }
}

/// A path as one word of NODE_OPTIONS or JAVA_TOOL_OPTIONS, both of which
/// split on spaces and understand double quotes.
fn quote(path: &Path) -> String {
    let text = path.display().to_string();
    if text.contains([' ', '\t', '"']) {
        format!("\"{}\"", text.replace('"', "\\\""))
    } else {
        text
    }
}

/// The host part of a NO_PROXY entry (`[::1]:8080` → `::1`, `a:80` → `a`).
fn strip_port(entry: &str) -> &str {
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match entry.split_once(':') {
        Some((host, port)) if !port.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => entry,
    }
}

/// True for NO_PROXY entries that only ever match loopback: `localhost`,
/// `*.localhost`, `127.0.0.1`, `127.*`, `127.0.0.0/8`, `::1`, `[::1]:3000`.
pub fn is_loopback_entry(entry: &str) -> bool {
    let entry = entry.trim().to_ascii_lowercase();
    let host = strip_port(&entry);
    let host = host.strip_prefix("*.").unwrap_or(host);
    let host = host.strip_prefix('.').unwrap_or(host);
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let (ip, prefix) = match host.split_once('/') {
        Some((ip, bits)) => (ip, bits.parse::<u8>().ok()),
        None => (host, None),
    };
    if let Ok(ip) = ip.parse::<IpAddr>() {
        // A CIDR wider than loopback (127.0.0.0/4) also covers other hosts.
        let narrow = match (ip, prefix) {
            (_, None) => true,
            (IpAddr::V4(_), Some(bits)) => bits >= 8,
            (IpAddr::V6(_), Some(bits)) => bits == 128,
        };
        return ip.is_loopback() && narrow;
    }
    // Wildcards such as 127.* or 127.0.0.*.
    host.starts_with("127.")
        && host
            .split('.')
            .all(|part| part == "*" || part.parse::<u8>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn trust() -> TrustPaths {
        TrustPaths {
            bundle_pem: "/t/bundle.pem".into(),
            java_truststore: "/t/trust store.p12".into(),
            node_preload: "/t/preload.js".into(),
        }
    }

    fn plan(proxy: &str, current: &[(&str, &str)]) -> ClientEnv {
        let current: HashMap<String, OsString> = current
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        ClientEnv::plan(proxy.parse().unwrap(), &trust(), |name| {
            current.get(name).cloned()
        })
    }

    fn value(env: &ClientEnv, name: &str) -> Option<String> {
        env.get(name)
            .unwrap_or_else(|| panic!("{name} not planned"))
            .map(|v| v.to_string_lossy().into_owned())
    }

    #[test]
    fn loopback_entries_are_recognised() {
        for entry in [
            "localhost",
            ".localhost",
            "*.localhost",
            "app.localhost",
            "LOCALHOST:3000",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3",
            "127.*",
            "127.0.0.*",
            "127.0.0.0/8",
            "::1",
            "[::1]",
            "[::1]:3000",
            "::1/128",
        ] {
            assert!(is_loopback_entry(entry), "{entry}");
        }
        for entry in [
            "*",
            "example.com",
            ".corp.example",
            "localhost.example.com",
            "10.0.0.0/8",
            "0.0.0.0",
            "127.0.0.0/4",
            "::/0",
            "169.254.169.254",
            "127.example.com",
        ] {
            assert!(!is_loopback_entry(entry), "{entry}");
        }
    }

    #[test]
    fn proxies_and_trust_variables_are_set() {
        let env = plan("127.0.0.1:8080", &[]);
        for name in PROXY_VARIABLES {
            assert_eq!(value(&env, name).as_deref(), Some("http://127.0.0.1:8080"));
        }
        for name in BUNDLE_VARIABLES {
            assert_eq!(
                value(&env, name).as_deref(),
                Some("/t/bundle.pem"),
                "{name}"
            );
        }
        assert_eq!(value(&env, "NO_PROXY"), None);
        assert_eq!(value(&env, "no_proxy"), None);
        assert_eq!(
            value(&env, "NODE_OPTIONS").as_deref(),
            Some("--require /t/preload.js")
        );
        let java = value(&env, "JAVA_TOOL_OPTIONS").unwrap();
        for want in [
            "-Dhttps.proxyHost=127.0.0.1",
            "-Dhttps.proxyPort=8080",
            "-Dhttp.proxyHost=127.0.0.1",
            "-Dhttp.nonProxyHosts= ",
            "-Djavax.net.ssl.trustStore=\"/t/trust store.p12\"",
            "-Djavax.net.ssl.trustStoreType=PKCS12",
            "-Djavax.net.ssl.trustStorePassword=changeit",
        ] {
            assert!(java.contains(want), "{want} missing from {java}");
        }
    }

    #[test]
    fn no_proxy_loses_loopback_only_for_a_local_proxy() {
        let current = [
            ("NO_PROXY", "localhost,127.0.0.1,.corp.example"),
            ("no_proxy", "::1, intranet:8443 localhost"),
        ];
        let env = plan("127.0.0.1:8080", &current);
        assert_eq!(
            value(&env, "NO_PROXY").as_deref(),
            Some(".corp.example,intranet:8443")
        );
        assert_eq!(
            value(&env, "no_proxy").as_deref(),
            Some(".corp.example,intranet:8443")
        );
        let java = value(&env, "JAVA_TOOL_OPTIONS").unwrap();
        assert!(
            java.contains("-Dhttp.nonProxyHosts=*.corp.example|intranet "),
            "{java}"
        );

        let remote = plan("192.0.2.10:8080", &current);
        assert_eq!(
            value(&remote, "NO_PROXY").as_deref(),
            Some("localhost,127.0.0.1,.corp.example,::1,intranet:8443")
        );
    }

    #[test]
    fn existing_runtime_options_are_kept() {
        let env = plan(
            "[::1]:9000",
            &[
                ("NODE_OPTIONS", "--max-old-space-size=4096"),
                ("JAVA_TOOL_OPTIONS", "-Xmx1g"),
            ],
        );
        assert_eq!(
            value(&env, "NODE_OPTIONS").as_deref(),
            Some("--max-old-space-size=4096 --require /t/preload.js")
        );
        let java = value(&env, "JAVA_TOOL_OPTIONS").unwrap();
        assert!(java.starts_with("-Xmx1g -Dhttps.proxyHost=::1 "), "{java}");
        assert_eq!(
            value(&env, "HTTPS_PROXY").as_deref(),
            Some("http://[::1]:9000")
        );
    }
}
