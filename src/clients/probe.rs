//! Finding out whether an authlens proxy already listens at an address, so
//! `authlens run` and `authlens browser` join it instead of starting their
//! own. The probe asks for the proxy's identity route (a request for the
//! proxy rather than through it), which records no exchange.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::connectable;
use crate::proxy::IDENTITY_PATH;

/// How long the probe waits for a connection and for the answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Versions of authlens without the identity route answer any request
/// addressed to the proxy itself with a page starting with this.
const AUTHLENS_SELF_ANSWER: &[u8] = b"authlens: 400 Bad Request";
/// Enough for the identity answer (or the old page's start).
const MAX_ANSWER: usize = 4096;

/// What listens at an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// An authlens proxy.
    Authlens,
    /// Something that accepted the connection but is not authlens.
    Other,
    /// Nothing: the connection was refused (or could not be made).
    Nothing,
}

/// Asks what listens at `addr`.
pub async fn probe(addr: SocketAddr) -> Listener {
    let addr = connectable(addr);
    let mut stream = match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(_)) => return Listener::Nothing,
        // Accepted by nobody in time: a filtered port, not a proxy.
        Err(_) => return Listener::Other,
    };
    let request = format!(
        "GET {IDENTITY_PATH} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: authlens-probe\r\nConnection: close\r\n\r\n"
    );
    let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        while answer.len() < MAX_ANSWER {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
            if is_authlens(&answer) {
                break;
            }
        }
        Ok::<_, std::io::Error>(answer)
    })
    .await;
    match answer {
        Ok(Ok(answer)) if is_authlens(&answer) => Listener::Authlens,
        _ => Listener::Other,
    }
}

/// True when `answer` (the start of an HTTP response) is authlens's: its
/// identity, or the page older versions give instead.
fn is_authlens(answer: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Identity {
        #[serde(rename = "authlens")]
        _version: String,
    }
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let (head, body) = (&answer[..end], &answer[end + 4..]);
    (head.starts_with(b"HTTP/1.1 200 ") && serde_json::from_slice::<Identity>(body).is_ok())
        || contains(body, AUTHLENS_SELF_ANSWER)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Which proxy a client command should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyChoice {
    /// Join the authlens proxy already listening here.
    Running(SocketAddr),
    /// Start a proxy in this process, listening here, for the command's duration.
    Start(SocketAddr),
}

/// Why no proxy could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    #[error(
        "nothing listens at {0}: start `authlens --listen {0}` first, or leave out --proxy to start one for this command"
    )]
    NotRunning(SocketAddr),
    #[error("something other than authlens listens at {0} (--proxy must name an authlens proxy)")]
    NotAuthlens(SocketAddr),
    #[error(
        "something other than authlens listens at {0}; pass --listen with a free address (127.0.0.1:0 picks one) or --proxy with a running authlens"
    )]
    Occupied(SocketAddr),
}

/// `--proxy ADDR` must name a running authlens; without it, an authlens at
/// the `--listen` address is joined, and otherwise one is started there.
pub async fn choose(
    explicit: Option<SocketAddr>,
    listen: SocketAddr,
) -> Result<ProxyChoice, ChoiceError> {
    if let Some(addr) = explicit {
        return match probe(addr).await {
            Listener::Authlens => Ok(ProxyChoice::Running(connectable(addr))),
            Listener::Nothing => Err(ChoiceError::NotRunning(addr)),
            Listener::Other => Err(ChoiceError::NotAuthlens(addr)),
        };
    }
    if listen.port() == 0 {
        return Ok(ProxyChoice::Start(listen));
    }
    match probe(listen).await {
        Listener::Authlens => Ok(ProxyChoice::Running(connectable(listen))),
        Listener::Nothing => Ok(ProxyChoice::Start(listen)),
        Listener::Other => Err(ChoiceError::Occupied(listen)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProxyConfig;
    use crate::proxy::Proxy;

    #[tokio::test]
    async fn tells_authlens_from_other_servers_and_from_nothing() {
        let certs = tempfile::tempdir().unwrap();
        let proxy = Proxy::bind(ProxyConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            certs.path(),
        ))
        .await
        .unwrap();
        let addr = proxy.local_addr();
        let mut exchanges = proxy.feed().subscribe();
        let stop = proxy.shutdown_handle();
        let task = tokio::spawn(proxy.run(std::future::pending()));
        assert_eq!(probe(addr).await, Listener::Authlens);
        assert_eq!(
            choose(None, addr).await.unwrap(),
            ProxyChoice::Running(addr)
        );
        let unspecified: SocketAddr = format!("0.0.0.0:{}", addr.port()).parse().unwrap();
        assert_eq!(
            choose(Some(unspecified), addr).await.unwrap(),
            ProxyChoice::Running(addr),
            "an unspecified address is reached on loopback"
        );

        // A server that answers something else.
        let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other_addr = other.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = other.accept().await {
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi")
                    .await;
            }
        });
        assert_eq!(probe(other_addr).await, Listener::Other);
        assert!(matches!(
            choose(Some(other_addr), addr).await,
            Err(ChoiceError::NotAuthlens(_))
        ));
        assert!(matches!(
            choose(None, other_addr).await,
            Err(ChoiceError::Occupied(_))
        ));

        // A port nobody listens on.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert_eq!(probe(free).await, Listener::Nothing);
        assert!(matches!(
            choose(Some(free), addr).await,
            Err(ChoiceError::NotRunning(_))
        ));
        assert_eq!(choose(None, free).await.unwrap(), ProxyChoice::Start(free));
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(choose(None, any).await.unwrap(), ProxyChoice::Start(any));

        assert!(exchanges.try_recv().is_err(), "probing records no exchange");
        stop.shutdown();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn recognises_versions_without_the_identity_route_by_their_page() {
        let old = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = old.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = old.accept().await {
                let _ = s
                    .write_all(
                        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 40\r\n\r\nauthlens: 400 Bad Request (client side)\n",
                    )
                    .await;
            }
        });
        assert_eq!(probe(addr).await, Listener::Authlens);
    }
}
