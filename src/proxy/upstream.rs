//! Connections to upstream servers: name resolution with `--connect-to`,
//! TCP, TLS with the client's ALPN offer, the HTTP handshake, and a pool so
//! keep-alive connections are reused per host and protocol.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::uri::Authority;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::body::RequestBody;
use super::error::{ConnectStage, UpstreamError, describe_tls};
use crate::config::{ConnectTo, Resolver, Timeouts};
use crate::tls::{AlpnOffer, Protocol, UpstreamTls};

/// HTTP/1.1 connections kept per pool key. Connections still reading a body
/// are in the list too, so this must exceed the concurrency one client
/// drives at a host (browsers open 6, load tests 50+); idle ones are swept
/// after `pool_idle`.
const MAX_IDLE_PER_KEY: usize = 128;

/// Idle connections per pool key that wait out the whole pool timeout: the
/// newest this many (a browser opens 6 per host). Older ones are what a
/// burst of concurrency left behind; each holds its TLS state and buffers,
/// so they are closed once idle for [`BURST_IDLE`], and memory comes back
/// within seconds of a burst instead of after the pool timeout.
const WARM_PER_KEY: usize = 8;
const BURST_IDLE: Duration = Duration::from_secs(5);

/// Idle connections, all keys together, that wait out the whole pool
/// timeout: the newest this many. A browser that visited hundreds of hosts
/// left one connection to each (about 21 KiB of TLS state and buffers
/// apiece); beyond these, idle HTTP/1.1 connections are closed once idle for
/// [`BURST_IDLE`] too (an HTTP/2 one, or one still reading a body, may be in
/// use).
const WARM_TOTAL: usize = 256;

/// How often idle connections are looked over ([`Upstream::sweep`]).
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scheme {
    Http,
    Https,
}

/// Where a request goes, before `--connect-to` rewriting.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    pub(crate) scheme: Scheme,
    /// Lower-case name or IP literal without brackets. Shared: a target is
    /// cloned for every request (pool keys, contexts).
    pub(crate) host: Arc<str>,
    pub(crate) port: u16,
}

impl Target {
    pub(crate) fn new(scheme: Scheme, host: &str, port: u16) -> Self {
        let host = crate::config::unbracket(host).to_ascii_lowercase().into();
        Target { scheme, host, port }
    }

    /// `host:port`, with brackets around IPv6 literals.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The port an authority names: `None` when it names none (an empty port
/// means the scheme's default, RFC 3986 §3.2.3), `Err` saying why when it
/// is not a port number (`http`'s own parser treats `:99999` as no port at
/// all, which would quietly send the request to the default port).
pub(crate) fn port_of(authority: &Authority) -> Result<Option<u16>, String> {
    let text = authority.as_str();
    let host_port = text.rsplit_once('@').map_or(text, |(_, rest)| rest);
    let after_host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => host_port.split_once(':').map_or("", |(_, port)| port),
    };
    let digits = after_host.strip_prefix(':').unwrap_or(after_host);
    if digits.is_empty() {
        return Ok(None);
    }
    match digits.parse::<u16>() {
        Ok(0) => Err(format!(
            "{host_port} names port 0, which cannot be connected to"
        )),
        Ok(port) => Ok(Some(port)),
        Err(_) => Err(format!(
            "{host_port} names port {digits}, which is not a port number (1 to 65535)"
        )),
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    target: Target,
    offer: AlpnOffer,
}

/// A ready-to-use HTTP connection to an upstream.
pub(crate) enum Sender {
    H1(http1::SendRequest<RequestBody>),
    H2(http2::SendRequest<RequestBody>),
}

impl Sender {
    pub(crate) fn protocol(&self) -> Protocol {
        match self {
            Sender::H1(_) => Protocol::Http1,
            Sender::H2(_) => Protocol::Http2,
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// Owns upstream TLS settings and the connection pool.
pub(crate) struct Upstream {
    tls: UpstreamTls,
    connect_to: Vec<ConnectTo>,
    timeouts: Timeouts,
    resolver: Resolver,
    /// The proxy's own listening address, to refuse loops.
    own_addr: SocketAddr,
    pool: Mutex<HashMap<PoolKey, Vec<Idle>>>,
    /// What each upstream chose for each offer, learnt from earlier handshakes.
    chosen: Mutex<HashMap<PoolKey, Protocol>>,
}

impl Upstream {
    pub(crate) fn new(
        tls: UpstreamTls,
        connect_to: Vec<ConnectTo>,
        timeouts: Timeouts,
        resolver: Resolver,
        own_addr: SocketAddr,
    ) -> Self {
        Upstream {
            tls,
            connect_to,
            resolver,
            timeouts,
            own_addr,
            pool: Mutex::new(HashMap::new()),
            chosen: Mutex::new(HashMap::new()),
        }
    }

    /// The protocol the upstream picks for this offer: known from the pool or
    /// an earlier handshake, else learnt by connecting now (the connection is
    /// kept for the first request).
    pub(crate) async fn protocol_for(
        &self,
        target: &Target,
        offer: AlpnOffer,
    ) -> Result<Protocol, UpstreamError> {
        let key = PoolKey {
            target: target.clone(),
            offer,
        };
        if let Some(p) = self.lock_chosen().get(&key) {
            return Ok(*p);
        }
        let sender = self.connect(&key, false).await?;
        let protocol = sender.protocol();
        self.release_key(key, sender);
        Ok(protocol)
    }

    /// A connection for one request: pooled when possible.
    pub(crate) async fn sender(
        &self,
        target: &Target,
        offer: AlpnOffer,
    ) -> Result<Sender, UpstreamError> {
        let key = PoolKey {
            target: target.clone(),
            offer,
        };
        if let Some(sender) = self.take_idle(&key) {
            return Ok(sender);
        }
        self.connect(&key, false).await
    }

    /// A fresh HTTP/1.1 connection that supports protocol upgrades.
    pub(crate) async fn upgradable(
        &self,
        target: &Target,
    ) -> Result<http1::SendRequest<RequestBody>, UpstreamError> {
        let key = PoolKey {
            target: target.clone(),
            offer: AlpnOffer::Http1,
        };
        match self.connect(&key, true).await? {
            Sender::H1(s) => Ok(s),
            Sender::H2(_) => Err(UpstreamError::Protocol {
                host: target.to_string(),
                detail: "upstream chose HTTP/2 for an upgrade request".into(),
            }),
        }
    }

    /// Returns a connection to the pool after its response head arrived. An
    /// HTTP/1.1 connection is busy until that response's body is read; it is
    /// only handed out again once ready.
    pub(crate) fn release(&self, target: &Target, offer: AlpnOffer, sender: Sender) {
        self.release_key(
            PoolKey {
                target: target.clone(),
                offer,
            },
            sender,
        );
    }

    fn release_key(&self, key: PoolKey, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut pool = self.lock_pool();
        let list = pool.entry(key).or_default();
        if matches!(sender, Sender::H2(_)) {
            // One multiplexed connection per key is enough.
            list.retain(|i| !i.sender.is_closed());
            if list.iter().any(|i| matches!(i.sender, Sender::H2(_))) {
                return;
            }
        }
        if list.len() < MAX_IDLE_PER_KEY {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    fn take_idle(&self, key: &PoolKey) -> Option<Sender> {
        let mut pool = self.lock_pool();
        let list = pool.get_mut(key)?;
        let max_idle = self.timeouts.pool_idle;
        // Newest first: the most recently used connection is the likeliest to
        // be alive. Only the entries looked at are checked; the periodic sweep
        // prunes the rest, so this stays cheap on the per-request path.
        let mut index = list.len();
        let mut found = None;
        while index > 0 {
            index -= 1;
            let entry = &mut list[index];
            if entry.sender.is_closed() || entry.since.elapsed() >= max_idle {
                list.swap_remove(index);
                continue;
            }
            match &entry.sender {
                Sender::H2(s) if s.is_ready() => {
                    let s = s.clone();
                    entry.since = Instant::now();
                    found = Some(Sender::H2(s));
                    break;
                }
                Sender::H1(s) if s.is_ready() => {
                    found = Some(list.swap_remove(index).sender);
                    break;
                }
                _ => {}
            }
        }
        // An emptied list stays for the connection's return (the sweep
        // removes lists still empty): no removal and re-insertion, nor a
        // list allocated again, per request.
        found
    }

    /// Drops idle connections older than the pool timeout, and those idle
    /// for [`BURST_IDLE`] beyond the newest [`WARM_PER_KEY`] of a key or
    /// (HTTP/1.1 ones only) the newest [`WARM_TOTAL`] of all; called every
    /// [`SWEEP_EVERY`].
    pub(crate) fn sweep(&self) {
        let max_idle = self.timeouts.pool_idle;
        let burst_idle = BURST_IDLE.min(max_idle);
        let mut pool = self.lock_pool();
        pool.retain(|_, list| {
            list.retain(|i| !i.sender.is_closed() && i.since.elapsed() < max_idle);
            if list.len() > WARM_PER_KEY
                && let Some(oldest_warm) =
                    oldest_of_newest(list.iter().map(|i| i.since), WARM_PER_KEY)
            {
                list.retain(|i| i.since >= oldest_warm || i.since.elapsed() < burst_idle);
            }
            !list.is_empty()
        });
        if pool.values().map(Vec::len).sum::<usize>() > WARM_TOTAL {
            let all = pool.values().flatten().map(|i| i.since);
            if let Some(oldest_warm) = oldest_of_newest(all, WARM_TOTAL) {
                pool.retain(|_, list| {
                    list.retain(|i| {
                        i.since >= oldest_warm
                            || i.since.elapsed() < burst_idle
                            // HTTP/2, or reading a body: may be in use.
                            || !matches!(&i.sender, Sender::H1(s) if s.is_ready())
                    });
                    !list.is_empty()
                });
            }
        }
        drop(pool);
        let mut chosen = self.lock_chosen();
        if chosen.len() > 10_000 {
            chosen.clear();
        }
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Vec<Idle>>> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_chosen(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Protocol>> {
        self.chosen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a TCP connection without HTTP on top, for passthrough tunnels.
    pub(crate) async fn raw_tcp(&self, target: &Target) -> Result<TcpStream, UpstreamError> {
        self.tcp(target, Instant::now() + self.timeouts.connect)
            .await
    }

    /// Opens a connection for `key` ([`Self::open`]) in a future of its
    /// own: every request's future (copied into its box per request) would
    /// otherwise carry the TCP and TLS handshakes' state for the few
    /// requests that connect (it made that future 36 KiB instead of 4).
    async fn connect(&self, key: &PoolKey, upgrades: bool) -> Result<Sender, UpstreamError> {
        Box::pin(self.open(key, upgrades)).await
    }

    /// Connects within one budget, `Timeouts::connect`, shared by every
    /// stage (lookup, TCP, TLS, HTTP handshake): each stage gets what the
    /// previous ones left, so the budget runs once, and a timeout names the
    /// stage it caught.
    async fn open(&self, key: &PoolKey, upgrades: bool) -> Result<Sender, UpstreamError> {
        let deadline = Instant::now() + self.timeouts.connect;
        let target = &key.target;
        let tcp = self.tcp(target, deadline).await?;
        match target.scheme {
            Scheme::Http => {
                let handshake = self.handshake(tcp, Protocol::Http1, target, upgrades);
                self.within(deadline, target, ConnectStage::Http, handshake)
                    .await?
            }
            Scheme::Https => {
                let name = ServerName::try_from(target.host.to_string()).map_err(|e| {
                    UpstreamError::BadTarget {
                        target: target.to_string(),
                        detail: e.to_string(),
                    }
                })?;
                let offer = if upgrades {
                    AlpnOffer::Http1
                } else {
                    key.offer
                };
                let connector = tokio_rustls::TlsConnector::from(self.tls.config(offer));
                let tls = self
                    .within(
                        deadline,
                        target,
                        ConnectStage::Tls,
                        connector.connect(name, tcp),
                    )
                    .await?
                    .map_err(|e| UpstreamError::Tls {
                        host: target.to_string(),
                        cause: describe_tls(&e),
                    })?;
                let protocol = Protocol::from_alpn(tls.get_ref().1.alpn_protocol());
                if !upgrades {
                    self.lock_chosen().insert(key.clone(), protocol);
                }
                let handshake = Box::pin(self.handshake(tls, protocol, target, upgrades));
                self.within(deadline, target, ConnectStage::Http, handshake)
                    .await?
            }
        }
    }

    /// Runs one stage of a connection, failing with a timeout that names
    /// the stage and the whole budget when `deadline` passes.
    async fn within<T>(
        &self,
        deadline: Instant,
        target: &Target,
        stage: ConnectStage,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, UpstreamError> {
        tokio::time::timeout_at(deadline.into(), work)
            .await
            .map_err(|_| UpstreamError::ConnectTimeout {
                host: target.to_string(),
                after: self.timeouts.connect,
                stage,
            })
    }

    async fn tcp(&self, target: &Target, deadline: Instant) -> Result<TcpStream, UpstreamError> {
        let (host, port) = self
            .connect_to
            .iter()
            .find_map(|rule| rule.apply(&target.host, target.port))
            .unwrap_or((&target.host, target.port));
        let addrs: Vec<SocketAddr> = self
            .within(
                deadline,
                target,
                ConnectStage::Lookup,
                self.resolver.lookup(host, port),
            )
            .await?
            .map_err(|e| UpstreamError::Dns {
                host: host.to_string(),
                detail: e.to_string(),
            })?;
        if addrs.is_empty() {
            return Err(UpstreamError::Dns {
                host: host.to_string(),
                detail: "no addresses".into(),
            });
        }
        let mut last = None;
        // Each address gets its share of the connect budget (at least 2 s),
        // so a dead first address (broken IPv6) does not eat all of it; the
        // budget itself is never exceeded.
        let per_address = (self.timeouts.connect / addrs.len() as u32).max(Duration::from_secs(2));
        for addr in addrs {
            if self.is_self(addr) {
                return Err(UpstreamError::Loop {
                    host: target.to_string(),
                    addr: addr.to_string(),
                });
            }
            let cut_off = (Instant::now() + per_address).min(deadline);
            let attempt =
                match tokio::time::timeout_at(cut_off.into(), TcpStream::connect(addr)).await {
                    Ok(attempt) => attempt,
                    Err(_) if cut_off == deadline => {
                        return Err(UpstreamError::ConnectTimeout {
                            host: target.to_string(),
                            after: self.timeouts.connect,
                            stage: ConnectStage::Tcp,
                        });
                    }
                    Err(_) => {
                        last = Some(UpstreamError::ConnectTimeout {
                            host: format!("{target} ({addr})"),
                            after: per_address,
                            stage: ConnectStage::Tcp,
                        });
                        continue;
                    }
                };
            match attempt {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    last = Some(UpstreamError::Refused {
                        host: target.to_string(),
                        addr: addr.to_string(),
                    })
                }
                Err(source) => {
                    last = Some(UpstreamError::Connect {
                        host: target.to_string(),
                        addr: addr.to_string(),
                        source,
                    })
                }
            }
        }
        Err(last.expect("at least one address was tried"))
    }

    /// True when `addr` is the proxy's own listener. Addresses are
    /// compared canonically: an IPv4-mapped IPv6 address
    /// (`::ffff:127.0.0.1`) reaches the IPv4 listener it names.
    pub(crate) fn is_self(&self, addr: SocketAddr) -> bool {
        is_self(self.own_addr, addr)
    }

    async fn handshake<T>(
        &self,
        io: T,
        protocol: Protocol,
        target: &Target,
        upgrades: bool,
    ) -> Result<Sender, UpstreamError>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        let protocol_err = |e: hyper::Error| UpstreamError::Protocol {
            host: target.to_string(),
            detail: e.to_string(),
        };
        let host = target.to_string();
        match protocol {
            Protocol::Http1 => {
                let (sender, conn) = http1::Builder::new()
                    .max_buf_size(super::MAX_BUFFER)
                    .preserve_header_case(true)
                    .handshake(io)
                    .await
                    .map_err(protocol_err)?;
                tokio::spawn(async move {
                    let result = if upgrades {
                        conn.with_upgrades().await
                    } else {
                        conn.await
                    };
                    if let Err(e) = result {
                        tracing::debug!(upstream = %host, "upstream HTTP/1.1 connection ended: {e}");
                    }
                });
                Ok(Sender::H1(sender))
            }
            Protocol::Http2 => {
                let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .initial_stream_window_size(super::H2_WINDOWS.upstream_side.0)
                    .initial_connection_window_size(super::H2_WINDOWS.upstream_side.1)
                    .max_frame_size(super::H2_MAX_FRAME)
                    .keep_alive_interval(Duration::from_secs(30))
                    .handshake(io)
                    .await
                    .map_err(protocol_err)?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(upstream = %host, "upstream HTTP/2 connection ended: {e}");
                    }
                });
                Ok(Sender::H2(sender))
            }
        }
    }
}

/// Sends one request on a connection, retrying once on a fresh connection
/// when a pooled HTTP/1.1 connection turned out to be closed before the
/// request was written (the server timed it out while idle).
pub(crate) async fn send(
    upstream: &Upstream,
    target: &Target,
    offer: AlpnOffer,
    mut sender: Sender,
    req: Request<RequestBody>,
) -> Result<(Response<Incoming>, Sender), UpstreamError> {
    // Named only on failure: formatting it for every request costs.
    let protocol_err = |e: hyper::Error| UpstreamError::Protocol {
        host: target.to_string(),
        detail: describe_hyper(&e),
    };
    let retry = match &mut sender {
        Sender::H2(s) => match s.try_send_request(req).await {
            Ok(resp) => return Ok((resp, sender)),
            Err(mut e) => match e.take_message() {
                // Not sent: the pooled connection was going away (GOAWAY).
                Some(req) => req,
                None => return Err(protocol_err(e.into_error())),
            },
        },
        Sender::H1(s) => match s.try_send_request(req).await {
            Ok(resp) => return Ok((resp, sender)),
            Err(mut e) => match e.take_message() {
                // Not written: the pooled connection was closed while idle.
                Some(req) => req,
                None => return Err(protocol_err(e.into_error())),
            },
        },
    };
    let mut fresh = upstream.sender_fresh(target, offer).await?;
    let resp = match &mut fresh {
        Sender::H1(s) => s.send_request(retry).await,
        Sender::H2(s) => s.send_request(retry).await,
    }
    .map_err(protocol_err)?;
    Ok((resp, fresh))
}

impl Upstream {
    async fn sender_fresh(
        &self,
        target: &Target,
        offer: AlpnOffer,
    ) -> Result<Sender, UpstreamError> {
        let key = PoolKey {
            target: target.clone(),
            offer,
        };
        self.connect(&key, false).await
    }
}

/// True when `addr` is the listener at `own` (see [`Upstream::is_self`]).
fn is_self(own: SocketAddr, addr: SocketAddr) -> bool {
    if addr.port() != own.port() {
        return false;
    }
    let own = own.ip().to_canonical();
    let ip = addr.ip().to_canonical();
    ip == own
        || (own.is_unspecified()
            && (ip.is_loopback() || ip.is_unspecified() || is_local_address(ip)))
        || (own.is_loopback() && ip.is_unspecified())
}

/// True when `ip` belongs to this machine (a LAN address of ours, say):
/// only a local address can be bound. Nothing is sent.
fn is_local_address(ip: std::net::IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

fn describe_hyper(e: &hyper::Error) -> String {
    use std::error::Error as _;
    if e.is_parse_too_large() {
        // hyper says the same of too many header fields (over 100) and of a
        // Content-Length out of range.
        return format!(
            "its response head is too large for authlens (over {} KiB, or over 100 header fields)",
            super::MAX_BUFFER / 1024
        );
    }
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The oldest of the newest `n` of `times`, when there are more than `n`
/// (those older than it are beyond the newest `n`).
fn oldest_of_newest(times: impl Iterator<Item = Instant>, n: usize) -> Option<Instant> {
    let mut times: Vec<Instant> = times.collect();
    if n == 0 || times.len() <= n {
        return None;
    }
    let (_, nth, _) = times.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
    Some(*nth)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cut that keeps the newest `n` idle connections (equal times are
    /// all kept).
    #[test]
    fn the_newest_n_are_found_in_any_order() {
        let t = Instant::now();
        let at = |s: u64| t + Duration::from_secs(s);
        let times = [5, 1, 9, 3, 7, 7, 2].map(at);
        assert_eq!(oldest_of_newest(times.into_iter(), 3), Some(at(7)));
        assert_eq!(oldest_of_newest(times.into_iter(), 4), Some(at(5)));
        assert_eq!(oldest_of_newest(times.into_iter(), 1), Some(at(9)));
        assert_eq!(oldest_of_newest(times.into_iter(), 7), None);
        assert_eq!(oldest_of_newest(times.into_iter(), 0), None);
        assert_eq!(oldest_of_newest(std::iter::empty(), 3), None);
    }

    #[test]
    fn ports_out_of_range_are_errors_not_the_default() {
        let port = |a: &str| port_of(&a.parse::<Authority>().unwrap());
        assert_eq!(port("idp.test:8443"), Ok(Some(8443)));
        assert_eq!(port("idp.test"), Ok(None));
        assert_eq!(port("idp.test:"), Ok(None));
        assert_eq!(port("[::1]:443"), Ok(Some(443)));
        assert_eq!(port("[::1]"), Ok(None));
        assert_eq!(port("user:pw@idp.test:81"), Ok(Some(81)));
        for bad in ["127.0.0.1:99999", "[::1]:65536", "idp.test:0"] {
            let err = port(bad).unwrap_err();
            assert!(err.starts_with(bad), "{err}");
        }
        // Userinfo is not repeated back.
        let err = port("user:pw@idp.test:70000").unwrap_err();
        assert!(err.starts_with("idp.test:70000 names port 70000"), "{err}");
    }

    #[test]
    fn mapped_addresses_name_the_ipv4_listener() {
        let own: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        for addr in ["127.0.0.1:8080", "[::ffff:127.0.0.1]:8080", "0.0.0.0:8080"] {
            assert!(is_self(own, addr.parse().unwrap()), "{addr}");
        }
        for addr in ["[::ffff:127.0.0.1]:8081", "[::ffff:192.0.2.1]:8080"] {
            assert!(!is_self(own, addr.parse().unwrap()), "{addr}");
        }
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(is_self(any, "[::ffff:127.0.0.1]:8080".parse().unwrap()));
    }

    #[test]
    fn local_addresses_are_recognised_without_sending_anything() {
        assert!(is_local_address("127.0.0.1".parse().unwrap()));
        // TEST-NET-1 (RFC 5737) is never assigned to a machine.
        assert!(!is_local_address("192.0.2.1".parse().unwrap()));
    }
}
