//! `body-not-analysed`: a token request whose body authlens did not read
//! whole, because it is larger than what authlens captures or reads,
//! because it broke off, or because its content coding could not be undone. What the rest of it held is unknown, so the other
//! rules say nothing that depends on it (no parameter is called missing);
//! this one says what was not checked, and why.

use serde_json::json;

use super::Draft;
use crate::oauth::event::Rule;
use crate::oauth::message::{BodySeen, TokenRequest};

/// `body-not-analysed`, when only part of the request body was read.
pub(super) fn body_not_analysed(req: &TokenRequest) -> Option<Draft> {
    let (message, fix, cause, read, size) = match req.body_seen {
        BodySeen::Whole => return None,
        BodySeen::TooLarge { read, size } => (
            format!(
                "the token request body is too large to analyse ({}; authlens read {}), so the parameters it may hold further on were not checked",
                human_bytes(size),
                human_bytes(read as u64),
            ),
            "A token request is normally well under 1 KiB: check what makes this one so large. authlens reads at most 256 KiB of a body, and captures at most --capture-limit bytes (raise it if it is smaller than the body).",
            "too large",
            read,
            size,
        ),
        BodySeen::BrokeOff { read, size } => (
            format!(
                "the token request body is incomplete: it broke off, or was still arriving 2 s after the answer, after {} (authlens read {}), so the parameters it may have held further on were not checked",
                human_bytes(size),
                human_bytes(read as u64),
            ),
            "The sender went away mid-body, or sent it very slowly (the exchange's error, if any, says which side): the IdP answered without the whole request. Retry, and check what cut or slowed the upload.",
            "broke off",
            read,
            size,
        ),
        BodySeen::NotDecoded { size } => (
            format!(
                "the token request body ({}) could not be decoded (its Content-Encoding is not one authlens reads, or the body is corrupt), so its parameters were not checked",
                human_bytes(size),
            ),
            "Token requests are normally sent without a content coding: send the form as is. authlens decodes gzip, deflate, br and zstd (windows up to 8 MiB); a body it cannot decode may be corrupt.",
            "not decoded",
            0,
            size,
        ),
    };
    Some(Draft::new(
        Rule::BodyNotAnalysed,
        Some("body"),
        message,
        fix,
        json!({
            "body": cause,
            "size": size,
            "analysed": read,
            "content_type": req.content_type,
        }),
    ))
}

/// `312 bytes`, `200 KiB`, `1.5 MiB`.
fn human_bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    match n {
        0..KIB => format!("{n} bytes"),
        KIB..MIB if n.is_multiple_of(KIB) => format!("{} KiB", n / KIB),
        KIB..MIB => format!("{:.1} KiB", n as f64 / KIB as f64),
        _ if n.is_multiple_of(MIB) => format!("{} MiB", n / MIB),
        _ => format!("{:.1} MiB", n as f64 / MIB as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(312), "312 bytes");
        assert_eq!(human_bytes(256 * 1024), "256 KiB");
        assert_eq!(human_bytes(300 * 1024 + 512), "300.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(human_bytes(4 * 1024 * 1024), "4 MiB");
    }
}
