//! A no-op hudsucker proxy for the authlens bench (`--peer hudsucker`).
//!
//! `hudsucker-peer UPSTREAM_ADDR UPSTREAM_CA_PEM CA_OUT_PEM`
//!
//! Listens on 127.0.0.1 (a free port, printed as `listening on ADDR`),
//! mints leaf certificates from a CA made at start (written to CA_OUT_PEM
//! for the client to trust), and sends every intercepted request to
//! UPSTREAM_ADDR whatever its host (like authlens's `--connect-to ::ADDR`),
//! verifying it against UPSTREAM_CA_PEM under the requested name. TCP_NODELAY
//! on both sides: set on the listening socket (accepted sockets inherit it
//! on Linux) and on every upstream socket. The handlers are hudsucker's
//! no-op ones.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hudsucker::Proxy;
use hudsucker::certificate_authority::RcgenAuthority;
use hudsucker::hyper::Uri;
use hudsucker::rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use hyper_util::rt::TokioIo;
use rustls::crypto::ring;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::{TcpSocket, TcpStream};

/// Connects every upstream request to one address, with TCP_NODELAY.
#[derive(Clone)]
struct Fixed(SocketAddr);

impl tower_service::Service<Uri> for Fixed {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let addr = self.0;
        Box::pin(async move {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(tcp))
        })
    }
}

fn usage() -> ! {
    eprintln!("usage: hudsucker-peer UPSTREAM_ADDR UPSTREAM_CA_PEM CA_OUT_PEM");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [upstream, upstream_ca, ca_out] = args.as_slice() else {
        usage()
    };
    let upstream: SocketAddr = upstream.parse().unwrap_or_else(|_| usage());

    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "hudsucker peer CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = params.self_signed(&key).expect("CA certificate").pem();
    std::fs::write(ca_out, &ca_pem).expect("writing the CA");
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, key).expect("issuer");
    let ca = RcgenAuthority::new(issuer, 1_000, ring::default_provider());

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(upstream_ca).expect("reading the upstream CA") {
        roots
            .add(cert.expect("upstream CA PEM"))
            .expect("upstream CA");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1();
    #[cfg(feature = "h2")]
    let https = https.enable_http2();
    let https = https.wrap_connector(Fixed(upstream));

    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_nodelay(true).expect("TCP_NODELAY");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let listener = socket.listen(1024).expect("listen");
    println!("listening on {}", listener.local_addr().expect("address"));

    let proxy = Proxy::builder()
        .with_listener(listener)
        .with_ca(ca)
        .with_http_connector(https)
        .build()
        .expect("proxy");
    if let Err(e) = proxy.start().await {
        eprintln!("hudsucker-peer: {e}");
        std::process::exit(1);
    }
}
