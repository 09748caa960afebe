//! The shared integration-test harness: a test CA made at run time, a local
//! HTTPS upstream with test routes, the proxy started in-process on port 0,
//! and clients configured to go through it. Everything stays on loopback.

#![forbid(unsafe_code)]

pub mod binary;
pub mod devtools;
pub mod lab;
pub mod mock_idp;
pub mod outputs;
pub mod skip;
pub mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authlens::config::{ConnectTo, HostPattern, OutputConfig, ProxyConfig};
use authlens::exchange::Exchange;
use authlens::oauth::AnalyzerConfig;
use authlens::proxy::Hooks;
use authlens::session::{Session, SessionSummary};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::broadcast;
use upstream::{TestUpstream, Tls};

/// A throw-away CA for test upstream servers (not the proxy's CA).
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
    pub dir: tempfile::TempDir,
    pub pem_path: PathBuf,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("test upstream CA {:08x}", rand::random::<u32>()),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pem_path = dir.path().join("upstream-ca.pem");
        std::fs::write(&pem_path, cert.pem()).unwrap();
        TestCa {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            dir,
            pem_path,
        }
    }

    /// A server certificate chain and key for `names` (DNS names or IPs).
    pub fn server_cert(
        &self,
        names: &[&str],
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }

    /// A TLS acceptor (ring, safe default versions) serving a certificate
    /// for `names` and offering `alpn`.
    pub fn tls_acceptor(&self, names: &[&str], alpn: Vec<Vec<u8>>) -> tokio_rustls::TlsAcceptor {
        let (chain, key) = self.server_cert(names);
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        config.alpn_protocols = alpn;
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// Options for [`TestProxy::start`].
#[derive(Default, Clone)]
pub struct ProxyOptions {
    /// `(host, port, upstream)` mappings turned into `--connect-to` rules.
    pub routes: Vec<(String, u16, SocketAddr)>,
    pub trust_test_ca: bool,
    pub passthrough: Vec<String>,
    pub insecure: bool,
    pub tweak: Option<fn(&mut ProxyConfig)>,
    /// The analysis settings (the default unless a test needs others).
    pub analyzer: AnalyzerConfig,
    /// The interceptor and local service to install (none by default).
    pub hooks: Hooks,
}

/// authlens, running in-process on `127.0.0.1:0` through a [`Session`]
/// with no outlets: tests read its exchanges and events directly.
pub struct TestProxy {
    pub addr: SocketAddr,
    /// Kept alive for the proxy's lifetime when the harness made it.
    pub certs: Option<tempfile::TempDir>,
    pub ca_pem: String,
    /// Every finished exchange, subscribed before any traffic.
    pub exchanges: broadcast::Receiver<Arc<Exchange>>,
    pub session: Session,
    pub ca: Arc<authlens::ca::CertificateAuthority>,
}

impl TestProxy {
    /// The proxy with `routes` (`(host, port, upstream)`) trusting the test
    /// CA upstream, everything else as by default.
    pub async fn routed(test_ca: &TestCa, routes: Vec<(String, u16, SocketAddr)>) -> TestProxy {
        let options = ProxyOptions {
            routes,
            trust_test_ca: true,
            ..Default::default()
        };
        Self::start(test_ca, options).await
    }

    pub async fn start(test_ca: &TestCa, options: ProxyOptions) -> TestProxy {
        let certs = tempfile::tempdir().unwrap();
        let mut proxy = Self::start_in(test_ca, options, certs.path()).await;
        proxy.certs = Some(certs);
        proxy
    }

    /// The proxy with its CA in `certs_dir` (which the caller owns).
    pub async fn start_in(
        test_ca: &TestCa,
        options: ProxyOptions,
        certs_dir: &std::path::Path,
    ) -> TestProxy {
        let output = OutputConfig::silent(options.analyzer.clone());
        Self::start_with_output(test_ca, options, certs_dir, output).await
    }

    /// The proxy with its CA in `certs_dir` and the given outputs.
    pub async fn start_with_output(
        test_ca: &TestCa,
        options: ProxyOptions,
        certs_dir: &std::path::Path,
        output: OutputConfig,
    ) -> TestProxy {
        let certs = None;
        let mut config = ProxyConfig::new("127.0.0.1:0".parse().unwrap(), certs_dir);
        if options.trust_test_ca {
            config.upstream_cas.push(test_ca.pem_path.clone());
        }
        config.insecure = options.insecure;
        for (host, port, to) in &options.routes {
            config.connect_to.push(ConnectTo {
                host: Some(host.clone()),
                port: Some(*port),
                to_host: to.ip().to_string(),
                to_port: to.port(),
            });
        }
        for p in &options.passthrough {
            config.passthrough.push(p.parse::<HostPattern>().unwrap());
        }
        if let Some(tweak) = options.tweak {
            tweak(&mut config);
        }
        let session = Session::start_with(config, output, options.hooks)
            .await
            .expect("authlens starts");
        let addr = session.local_addr();
        let exchanges = session.exchanges();
        let ca = session.ca().clone();
        let ca_pem = std::fs::read_to_string(ca.cert_path()).unwrap();
        TestProxy {
            addr,
            certs,
            ca_pem,
            exchanges,
            session,
            ca,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A reqwest client going through the proxy and trusting its CA.
    pub fn client(&self, http: Http) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(self.url()).unwrap())
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .tls_built_in_root_certs(false)
            .timeout(Duration::from_secs(120));
        builder = match http {
            Http::One => builder.http1_only(),
            Http::Two => builder,
        };
        builder.build().unwrap()
    }

    /// A raw connection with a CONNECT to `authority` (`host:port`) sent and
    /// the proxy's answer head (up to the blank line) read; returns both.
    pub async fn connect_tunnel(&self, authority: &str) -> (tokio::net::TcpStream, Vec<u8>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        tcp.write_all(
            format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "CONNECT answered");
            head.push(byte[0]);
        }
        (tcp, head)
    }

    /// The next exchange whose URL path is `path`, skipping others.
    pub async fn exchange_for(&mut self, path: &str) -> Arc<Exchange> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let next = tokio::time::timeout_at(deadline, self.exchanges.recv())
                .await
                .unwrap_or_else(|_| panic!("no exchange for {path} within 30 s"))
                .expect("exchange stream open");
            if next.request.uri.path() == path {
                return next;
            }
        }
    }

    /// Stops the session in its one shutdown order.
    pub async fn stop(self) -> SessionSummary {
        tokio::time::timeout(Duration::from_secs(20), self.session.stop())
            .await
            .expect("authlens stops within 20 s")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Http {
    One,
    Two,
}

/// A client going through the proxy at `proxy_url` that trusts only the CA
/// in `ca_pem`, follows no redirects and gives up after a generous minute.
pub fn client_through(proxy_url: &str, ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(proxy_url).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// SHA-256 in hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (so both ends can hash without storing).
pub fn pattern_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A rustls client configuration trusting the CA(s) in `ca_pem`, offering `alpn`.
pub fn client_config(ca_pem: &[u8], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// The proxy with `idp.test:443` routed to a trusted TLS upstream serving
/// the test routes.
pub async fn proxied_upstream() -> (TestCa, TestUpstream, TestProxy) {
    proxied_upstream_with(|_| {}).await
}

/// [`proxied_upstream`] with the proxy configuration adjusted by `tweak`
/// (shorter timeouts, say).
pub async fn proxied_upstream_with(
    tweak: fn(&mut ProxyConfig),
) -> (TestCa, TestUpstream, TestProxy) {
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::names(&["idp.test"])).await;
    let proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![("idp.test".into(), 443, upstream.addr)],
            trust_test_ca: true,
            tweak: Some(tweak),
            ..Default::default()
        },
    )
    .await;
    (ca, upstream, proxy)
}

/// `data` as a request body: with a Content-Length, or streamed in
/// `chunk`-sized pieces (chunked on HTTP/1.1) when `chunk` is given.
pub fn request_body(data: Vec<u8>, chunk: Option<usize>) -> reqwest::Body {
    match chunk {
        None => reqwest::Body::from(data),
        Some(size) => {
            let parts: Vec<Result<Vec<u8>, std::io::Error>> =
                data.chunks(size.max(1)).map(|c| Ok(c.to_vec())).collect();
            reqwest::Body::wrap_stream(futures_util::stream::iter(parts))
        }
    }
}

/// The program's path when it is on PATH.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Chromium or Chrome from PATH.
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| on_path(b))
}

/// [`chromium`], or `None` after saying that `what` is skipped without it
/// (a failure in CI, which installs it).
pub fn chromium_or_skip(what: &str) -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        skip::skip(what, "no Chromium on PATH", skip::InCi::Required);
    }
    found
}

/// Flags for a headless Chromium on a machine without internet (as root):
/// without the background-networking ones it keeps trying Google's hosts.
pub const HEADLESS_CHROMIUM: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
];

/// A proxy tweak for browser tests: every host without its own route goes
/// to a closed loopback port, so nothing a browser sends on its own is
/// resolved or sent off this machine.
pub fn send_unrouted_hosts_nowhere(config: &mut ProxyConfig) {
    config.connect_to.push(ConnectTo {
        host: None,
        port: None,
        to_host: "127.0.0.1".into(),
        to_port: 9,
    });
}
