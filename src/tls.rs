//! TLS configuration for both sides of an intercepted connection.
//!
//! Everything here is built once at start-up (trust stores are slow to load)
//! and shared: one client configuration per ALPN offer towards upstreams, and
//! server configurations per (host, negotiated protocol) towards clients.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::{
    ClientHello, ResolvesServerCert, ServerSessionMemoryCache, StoresServerSessions,
};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::ca::{CaError, CertificateAuthority};

/// The crypto provider, chosen explicitly so no process-wide default is
/// needed: ring's, with AES-128-GCM first (see [`cheapest_first`]).
pub fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    cheapest_first(&mut provider.cipher_suites);
    Arc::new(provider)
}

/// Puts the AES-128-GCM suites first, keeping the order otherwise. ring lists
/// AES-256-GCM first; AES-128-GCM is as strong a choice for a proxy on
/// loopback (it is TLS 1.3's mandatory suite, and browsers offer it first)
/// and takes 10 AES rounds per block instead of 14, on both legs of every
/// byte that passes. authlens's TLS server also prefers its own order over
/// the client's (OpenSSL clients offer AES-256-GCM first): the client runs
/// on the same machine, with the same AES instructions.
fn cheapest_first(suites: &mut [rustls::SupportedCipherSuite]) {
    use rustls::CipherSuite::*;
    suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            TLS13_AES_128_GCM_SHA256
                | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
}

/// Why the upstream trust configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read the CA file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no usable PEM certificate{detail}")]
    NoCertificate { path: PathBuf, detail: String },
    #[error("cannot build the upstream certificate verifier: {0}")]
    Verifier(String),
}

/// The application protocols a client offered, reduced to the two authlens
/// can serve. Upstream connections are offered exactly this set, so the
/// upstream's choice can be handed back to the client unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlpnOffer {
    None,
    Http1,
    Http2,
    Both,
}

impl AlpnOffer {
    /// Reduces a client's ALPN list (in the client's order) to an offer.
    pub fn from_client<'a>(protocols: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let (mut h1, mut h2) = (false, false);
        for p in protocols {
            match p {
                b"h2" => h2 = true,
                b"http/1.1" => h1 = true,
                _ => {}
            }
        }
        match (h1, h2) {
            (false, false) => AlpnOffer::None,
            (true, false) => AlpnOffer::Http1,
            (false, true) => AlpnOffer::Http2,
            (true, true) => AlpnOffer::Both,
        }
    }

    fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            AlpnOffer::None => vec![],
            AlpnOffer::Http1 => vec![b"http/1.1".to_vec()],
            // A client that speaks only h2 can still be served from an
            // HTTP/1.1-only upstream (authlens translates), so offer both.
            AlpnOffer::Http2 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            AlpnOffer::Both => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }

    /// What to give the client when the upstream could not be asked.
    pub fn fallback(self) -> Protocol {
        match self {
            AlpnOffer::Http2 => Protocol::Http2,
            _ => Protocol::Http1,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The HTTP version spoken on one TLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    pub fn from_alpn(alpn: Option<&[u8]>) -> Self {
        match alpn {
            Some(b"h2") => Protocol::Http2,
            _ => Protocol::Http1,
        }
    }

    pub fn alpn_id(self) -> &'static str {
        match self {
            Protocol::Http1 => "http/1.1",
            Protocol::Http2 => "h2",
        }
    }
}

/// Client-side TLS towards upstream servers, one config per ALPN offer.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    configs: [Arc<ClientConfig>; 4],
}

impl UpstreamTls {
    /// Builds the verifier from the system trust store (webpki-roots when the
    /// system has none) plus `extra_cas`, or no verification at all when
    /// `insecure`.
    pub fn new(
        provider: Arc<CryptoProvider>,
        extra_cas: &[PathBuf],
        insecure: bool,
    ) -> Result<Self, TrustError> {
        let mut extra = Vec::new();
        for path in extra_cas {
            extra.extend(read_pem_certs(path)?);
        }
        let verifier: Arc<dyn ServerCertVerifier> = if insecure {
            Arc::new(NoVerification(provider.clone()))
        } else {
            platform_or_bundled(provider.clone(), extra)?
        };
        let make = |offer: AlpnOffer| -> Result<Arc<ClientConfig>, TrustError> {
            let mut config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| TrustError::Verifier(e.to_string()))?
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth();
            config.alpn_protocols = offer.protocols();
            Ok(Arc::new(config))
        };
        Ok(UpstreamTls {
            configs: [
                make(AlpnOffer::None)?,
                make(AlpnOffer::Http1)?,
                make(AlpnOffer::Http2)?,
                make(AlpnOffer::Both)?,
            ],
        })
    }

    pub fn config(&self, offer: AlpnOffer) -> Arc<ClientConfig> {
        self.configs[offer.index()].clone()
    }
}

fn platform_or_bundled(
    provider: Arc<CryptoProvider>,
    extra: Vec<CertificateDer<'static>>,
) -> Result<Arc<dyn ServerCertVerifier>, TrustError> {
    // Probe the platform store alone first: with extra roots the platform
    // verifier would succeed on those alone and silently trust nothing else.
    if rustls_platform_verifier::Verifier::new(provider.clone()).is_ok() {
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
                .map_err(|e| TrustError::Verifier(e.to_string()))?;
        return Ok(Arc::new(verifier));
    }
    tracing::warn!("no system CA certificates found; using the bundled webpki-roots list");
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra {
        roots
            .add(cert)
            .map_err(|e| TrustError::Verifier(e.to_string()))?;
    }
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| TrustError::Verifier(e.to_string()))?;
    Ok(verifier)
}

/// Reads every certificate from a PEM file.
pub fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    use rustls_pki_types::pem::PemObject;
    let data = std::fs::read(path).map_err(|source| TrustError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut certs = Vec::new();
    let mut detail = String::new();
    for item in CertificateDer::pem_slice_iter(&data) {
        match item {
            Ok(cert) => certs.push(cert),
            Err(e) => detail = format!(": {e}"),
        }
    }
    if certs.is_empty() {
        return Err(TrustError::NoCertificate {
            path: path.to_path_buf(),
            detail,
        });
    }
    Ok(certs)
}

/// `--insecure`: accepts any upstream certificate but still checks handshake
/// signatures, so the connection is at least consistent.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Server-side TLS towards clients: one cached config per (host, protocol),
/// so repeat connections can resume sessions and nothing is rebuilt per
/// connection.
pub struct InterceptTls {
    provider: Arc<CryptoProvider>,
    ca: Arc<CertificateAuthority>,
    configs: Mutex<HashMap<ConfigKey, Arc<ServerConfig>>>,
    sessions: Arc<ServerSessionMemoryCache>,
}

const SERVER_CONFIG_CACHE_LIMIT: usize = 10_000;

/// Sessions kept for clients to resume, in one store shared by every
/// host's config (each TLS 1.3 handshake leaves two). rustls's default, a
/// preallocated store of 256 per config, kept about 16 KiB per host the
/// proxy had seen for as long as its config was cached. Each config sees
/// only its host's part of the store ([`HostSessions`]).
const RESUMABLE_SESSIONS: usize = 2048;

/// One host's view of the shared session store: its keys carry the host, so
/// a session is resumed only on a config presenting that host's
/// certificate. (rustls also checks the server name, but clients that send
/// none, as for IP addresses, would otherwise match any such host.) The
/// configs of one host (one per protocol) share its sessions; every config
/// has the same client policy (no client certificates).
#[derive(Debug)]
struct HostSessions {
    host: String,
    shared: Arc<ServerSessionMemoryCache>,
}

impl HostSessions {
    fn key(&self, key: &[u8]) -> Vec<u8> {
        // A host name holds no NUL byte: the prefix cannot run into the key.
        let mut full = Vec::with_capacity(self.host.len() + 1 + key.len());
        full.extend_from_slice(self.host.as_bytes());
        full.push(0);
        full.extend_from_slice(key);
        full
    }
}

impl StoresServerSessions for HostSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.shared.put(self.key(&key), value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.shared.get(&self.key(key))
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.shared.take(&self.key(key))
    }

    fn can_cache(&self) -> bool {
        self.shared.can_cache()
    }
}

/// A host name and the protocol offered to the client for it.
type ConfigKey = (String, Option<Protocol>);

impl InterceptTls {
    pub fn new(provider: Arc<CryptoProvider>, ca: Arc<CertificateAuthority>) -> Self {
        InterceptTls {
            provider,
            ca,
            configs: Mutex::new(HashMap::new()),
            sessions: ServerSessionMemoryCache::new(RESUMABLE_SESSIONS),
        }
    }

    pub fn ca(&self) -> &Arc<CertificateAuthority> {
        &self.ca
    }

    /// The server config presenting a certificate for `host` and offering
    /// exactly `protocol` (or no ALPN when `None`).
    pub fn server_config(
        &self,
        host: &str,
        protocol: Option<Protocol>,
    ) -> Result<Arc<ServerConfig>, CaError> {
        let key = (host.to_ascii_lowercase(), protocol);
        if let Some(found) = self
            .configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(found.clone());
        }
        let leaf = self.ca.leaf_for(host)?;
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| CaError::Mint {
                host: host.to_string(),
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(FixedCert(leaf)));
        config.alpn_protocols = protocol
            .map(|p| vec![p.alpn_id().as_bytes().to_vec()])
            .unwrap_or_default();
        config.ignore_client_order = true;
        config.session_storage = Arc::new(HostSessions {
            host: key.0.clone(),
            shared: self.sessions.clone(),
        });
        let config = Arc::new(config);
        let mut configs = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        if configs.len() >= SERVER_CONFIG_CACHE_LIMIT {
            configs.clear();
        }
        configs.insert(key, config.clone());
        Ok(config)
    }
}

#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CipherSuite::*;

    /// Every host's configs keep their sessions in the one shared store,
    /// each host seeing only its own.
    #[test]
    fn every_hosts_config_shares_one_session_store() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ca =
            CertificateAuthority::load_or_create(dir.path(), &provider, crate::ca::OpenKey::Refuse)
                .unwrap();
        let tls = InterceptTls::new(provider, Arc::new(ca));
        let a1 = tls.server_config("a.test", Some(Protocol::Http1)).unwrap();
        let a2 = tls.server_config("a.test", Some(Protocol::Http2)).unwrap();
        let b = tls.server_config("b.test", Some(Protocol::Http1)).unwrap();
        let ip = tls.server_config("10.0.0.1", None).unwrap();
        assert!(a1.session_storage.put(b"ticket".to_vec(), b"a's".to_vec()));
        assert!(ip.session_storage.put(b"other".to_vec(), b"ip's".to_vec()));
        assert_eq!(
            a2.session_storage.get(b"ticket").as_deref(),
            Some(&b"a's"[..])
        );
        assert_eq!(b.session_storage.get(b"ticket"), None);
        assert_eq!(ip.session_storage.get(b"ticket"), None);
        assert_eq!(b.session_storage.take(b"other"), None);
        assert_eq!(
            ip.session_storage.take(b"other").as_deref(),
            Some(&b"ip's"[..])
        );
        // One store behind them all.
        assert_eq!(
            tls.sessions.get(b"a.test\0ticket").as_deref(),
            Some(&b"a's"[..])
        );
    }

    #[test]
    fn aes_128_gcm_comes_first_for_each_version_and_nothing_is_dropped() {
        let ring = rustls::crypto::ring::default_provider();
        let ours = provider();
        let names = |p: &CryptoProvider| {
            p.cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect::<Vec<_>>()
        };
        let (mut before, mut after) = (names(&ring), names(&ours));
        assert_eq!(after[0], TLS13_AES_128_GCM_SHA256);
        let tls12: Vec<_> = after
            .iter()
            .filter(|s| !format!("{s:?}").starts_with("TLS13"))
            .collect();
        assert!(
            matches!(
                tls12.get(..2).unwrap_or_default(),
                [
                    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
                ]
            ),
            "{tls12:?}"
        );
        before.sort_by_key(|s| format!("{s:?}"));
        after.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(before, after);
    }
}
