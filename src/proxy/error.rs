//! Why a request could not be forwarded, tagged with the side at fault, and
//! the plain-text answer the client gets for it.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::body::{Body, ResponseBody};
use crate::exchange::FailureSide;

/// A failure while reaching or talking to an upstream server, including the
/// client's upload breaking off on the way there.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("DNS lookup of {host} failed: {detail}")]
    Dns { host: String, detail: String },
    #[error("connection to {host} ({addr}) was refused: nothing is listening there")]
    Refused { host: String, addr: String },
    /// The whole connect budget (`Timeouts::connect`: lookup, TCP, TLS and
    /// HTTP handshakes together) ran out, or one address's share of it.
    #[error("connecting to {host} timed out after {}: {stage}", seconds(*after))]
    ConnectTimeout {
        host: String,
        after: Duration,
        stage: ConnectStage,
    },
    #[error("connecting to {host} ({addr}) failed: {source}")]
    Connect {
        host: String,
        addr: String,
        source: io::Error,
    },
    #[error("TLS handshake with {host} failed: {cause}")]
    Tls { host: String, cause: String },
    #[error("{host} did not answer within {secs} s")]
    ResponseTimeout { host: String, secs: u64 },
    #[error("{host} closed the connection or sent an invalid response: {detail}")]
    Protocol { host: String, detail: String },
    #[error(
        "{host} is authlens itself ({addr}); the request would loop. Use authlens as a proxy rather than requesting it directly"
    )]
    Loop { host: String, addr: String },
    #[error("{target} is not a valid request target: {detail}")]
    BadTarget { target: String, detail: String },
    #[error("{host} answered with a body larger than {limit} bytes")]
    TooLarge { host: String, limit: usize },
    #[error("the client's upload broke off before {host} got the whole request: {detail}")]
    ClientUpload { host: String, detail: String },
    /// The client's request body fell behind the minimum pace
    /// (`Timeouts::client_body`).
    #[error("authlens stopped waiting for the request body for {host}: {detail}")]
    ClientTooSlow { host: String, detail: String },
}

/// How far a connection got when its time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectStage {
    Lookup,
    Tcp,
    Tls,
    Http,
}

impl std::fmt::Display for ConnectStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectStage::Lookup => "the name lookup did not finish",
            ConnectStage::Tcp => "no TCP connection was established",
            ConnectStage::Tls => {
                "the TCP connection was accepted but the TLS handshake never finished (is it speaking TLS?)"
            }
            ConnectStage::Http => "the HTTP handshake never finished",
        })
    }
}

/// A duration as people write it: `10 s`, `1.5 s`, `0.25 s`.
pub(crate) fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

impl UpstreamError {
    /// The side a 5xx/4xx answer should blame.
    pub fn side(&self) -> FailureSide {
        match self {
            UpstreamError::Loop { .. }
            | UpstreamError::BadTarget { .. }
            | UpstreamError::ClientUpload { .. }
            | UpstreamError::ClientTooSlow { .. } => FailureSide::Client,
            _ => FailureSide::Upstream,
        }
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::ConnectTimeout { .. } | UpstreamError::ResponseTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            UpstreamError::ClientTooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            UpstreamError::Loop { .. }
            | UpstreamError::BadTarget { .. }
            | UpstreamError::ClientUpload { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The plain-text body of the error page.
    pub fn body(&self) -> String {
        let side = match self.side() {
            FailureSide::Upstream => "upstream side",
            FailureSide::Client => "client side",
            FailureSide::Proxy => "authlens itself",
        };
        let mut text = format!(
            "authlens: {} {} ({side})\n{self}\n",
            self.status().as_u16(),
            self.status().canonical_reason().unwrap_or("")
        );
        if let Some(hint) = self.hint() {
            text.push_str(hint);
            text.push('\n');
        }
        text
    }

    /// The error page the client gets.
    pub(crate) fn page(&self) -> Response<ResponseBody> {
        page(self.status(), self.body())
    }

    fn hint(&self) -> Option<&'static str> {
        match self {
            UpstreamError::Tls { cause, .. } if cause.contains("unknown issuer") => Some(
                "hint: the upstream's certificate is not signed by a CA authlens trusts; add it with --upstream-ca FILE (or use --insecure for a throw-away test)",
            ),
            UpstreamError::Dns { .. } => {
                Some("hint: check the host name, or map it with --connect-to HOST:PORT:ADDR:PORT")
            }
            _ => None,
        }
    }
}

/// A plain-text page made by the proxy (a refusal, an explained error),
/// not part of any recorded exchange.
pub(crate) fn page(status: StatusCode, text: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::unrecorded(Body::full(text)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The request was failed as a network error on purpose (an interceptor
/// dropped it): the service returns this, so hyper closes the connection
/// (HTTP/1.1) or resets the stream (HTTP/2) without an answer.
#[derive(Debug, thiserror::Error)]
#[error("authlens dropped the request on purpose")]
pub(crate) struct Dropped;

/// Describes a rustls failure in words a developer recognises.
pub(crate) fn describe_tls(err: &io::Error) -> String {
    let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match err.kind() {
            io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during the handshake (is it speaking TLS?)".into()
            }
            _ => err.to_string(),
        };
    };
    use rustls::CertificateError as C;
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => "certificate signed by an unknown issuer (untrusted CA)".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "certificate is not valid for this host name".into()
            }
            C::Expired | C::ExpiredContext { .. } => "certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "certificate is not valid yet".into(),
            C::Revoked => "certificate has been revoked".into(),
            C::BadSignature => "certificate has a bad signature".into(),
            other => format!("invalid certificate: {other:?}"),
        },
        rustls::Error::AlertReceived(alert) => format!("the server sent TLS alert {alert:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_timeout_names_the_budget_as_configured_and_the_stage() {
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_millis(250)), "0.25 s");
        let error = UpstreamError::ConnectTimeout {
            host: "idp.test:443".into(),
            after: Duration::from_millis(1500),
            stage: ConnectStage::Tls,
        };
        assert_eq!(error.status(), StatusCode::GATEWAY_TIMEOUT);
        let text = error.to_string();
        assert!(
            text.starts_with("connecting to idp.test:443 timed out after 1.5 s: "),
            "{text}"
        );
        assert!(text.contains("TLS handshake never finished"), "{text}");
    }
}
