//! Undoing `Content-Encoding` on captured bodies, for observers only.
//!
//! The proxy forwards bodies exactly as they came; the analysis, however,
//! must read an IdP's gzip- or brotli-compressed form_post page like any
//! other. Output is capped so a compression bomb cannot blow up memory.

use std::borrow::Cow;
use std::io::Read;

use http::HeaderMap;
use http::header::CONTENT_ENCODING;

use crate::exchange::CapturedBody;

/// The largest zstd window accepted: RFC 9659 §3 lets HTTP decoders refuse
/// more than 8 MiB (browsers do), and a frame header alone would otherwise
/// make the decoder reserve up to 128 MiB.
const ZSTD_MAX_WINDOW: u64 = 8 * 1024 * 1024;

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unsupported content-encoding {0:?}")]
    Unsupported(String),
    #[error("corrupt {coding} body: {detail}")]
    Corrupt { coding: String, detail: String },
}

/// The body with every listed content coding undone (in reverse order of
/// application), at most `cap` bytes. A body that was cut off by the capture
/// limit decodes to the prefix that could be recovered.
pub fn decoded_body<'a>(
    body: &'a CapturedBody,
    headers: &HeaderMap,
    cap: usize,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let codings: Vec<String> = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    if codings.is_empty() {
        return Ok(Cow::Borrowed(&body.bytes));
    }
    let complete = body.is_complete();
    let mut data: Vec<u8> = body.bytes.to_vec();
    for coding in codings.iter().rev() {
        data = decode_one(coding, &data, cap, complete)?;
    }
    Ok(Cow::Owned(data))
}

fn decode_one(
    coding: &str,
    input: &[u8],
    cap: usize,
    complete: bool,
) -> Result<Vec<u8>, DecodeError> {
    let reader: Box<dyn Read + '_> = match coding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(input)),
        "deflate" => {
            // "deflate" means zlib-wrapped, but some servers send raw deflate.
            if input.len() >= 2 && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0 {
                Box::new(flate2::read::ZlibDecoder::new(input))
            } else {
                Box::new(flate2::read::DeflateDecoder::new(input))
            }
        }
        "br" => Box::new(brotli_decompressor::Decompressor::new(input, 4096)),
        "zstd" => match ruzstd::decoding::StreamingDecoder::new_with_max_window_size(
            input,
            ZSTD_MAX_WINDOW,
        ) {
            Ok(decoder) => Box::new(decoder),
            Err(e) => {
                return Err(DecodeError::Corrupt {
                    coding: coding.to_string(),
                    detail: e.to_string(),
                });
            }
        },
        other => return Err(DecodeError::Unsupported(other.to_string())),
    };
    let mut out = Vec::new();
    match reader.take(cap as u64).read_to_end(&mut out) {
        Ok(_) => Ok(out),
        // A truncated capture ends mid-stream: keep what was recovered.
        Err(_) if !complete || !out.is_empty() => Ok(out),
        Err(e) => Err(DecodeError::Corrupt {
            coding: coding.to_string(),
            detail: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn headers(coding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, coding.parse().unwrap());
        h
    }

    #[test]
    fn gzip_and_deflate_round_trip() {
        let text = b"<form method=\"POST\"><input name=\"code\" value=\"x\"></form>".repeat(20);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let body = CapturedBody::complete(gz.finish().unwrap());
        assert_eq!(
            &*decoded_body(&body, &headers("gzip"), 1 << 20).unwrap(),
            &text[..]
        );

        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let body = CapturedBody::complete(z.finish().unwrap());
        assert_eq!(
            &*decoded_body(&body, &headers("deflate"), 1 << 20).unwrap(),
            &text[..]
        );
    }

    #[test]
    fn identity_borrows_and_unknown_codings_are_errors() {
        let body = CapturedBody::complete(&b"plain"[..]);
        assert!(matches!(
            decoded_body(&body, &HeaderMap::new(), 10).unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            decoded_body(&body, &headers("compress"), 10).unwrap_err(),
            DecodeError::Unsupported("compress".into())
        );
        assert!(
            decoded_body(&body, &headers("gzip"), 10).is_err(),
            "not gzip at all"
        );
    }

    #[test]
    fn zstd_round_trips() {
        let text = b"{\"access_token\":\"x\",\"token_type\":\"Bearer\"}".repeat(30);
        let packed = ruzstd::encoding::compress_to_vec(
            &text[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let body = CapturedBody::complete(packed);
        assert_eq!(
            &*decoded_body(&body, &headers("zstd"), 1 << 20).unwrap(),
            &text[..]
        );
        assert!(decoded_body(&CapturedBody::complete(&b"nope"[..]), &headers("zstd"), 10).is_err());
    }

    #[test]
    fn raw_deflate_and_brotli_decode_too() {
        let text = b"<form><input name=\"code\" value=\"x\"></form>".repeat(10);
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&text).unwrap();
        let body = CapturedBody::complete(raw.finish().unwrap());
        assert_eq!(
            &*decoded_body(&body, &headers("deflate"), 1 << 20).unwrap(),
            &text[..]
        );

        // Made once with Python's brotli module (no encoder in the tree).
        let br: &[u8] = &[
            0x1b, 0x7d, 0x00, 0xf8, 0x9d, 0x07, 0x76, 0x2c, 0xb0, 0x7c, 0x8a, 0xa1, 0x7c, 0x73,
            0x94, 0x5a, 0x44, 0x2e, 0x6f, 0x6f, 0x0b, 0x85, 0xd1, 0xe1, 0x49, 0x1d, 0x96, 0xbe,
            0x16, 0xf9, 0x2a, 0x83, 0xd3, 0x8b, 0x50, 0x32, 0x0b, 0x82, 0x7a, 0x81, 0x1c, 0x34,
            0xb9, 0x85, 0x17, 0xb8, 0x0b, 0x0b, 0xdf, 0x6c, 0x07, 0xb2, 0xe2, 0x0b,
        ];
        let want = b"{\"access_token\":\"x\",\"token_type\":\"Bearer\"}".repeat(3);
        let body = CapturedBody::complete(br);
        assert_eq!(
            &*decoded_body(&body, &headers("br"), 1 << 20).unwrap(),
            &want[..]
        );
    }

    #[test]
    fn a_truncated_capture_decodes_to_what_was_recovered() {
        let text = b"0123456789abcdef".repeat(4096);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let packed = gz.finish().unwrap();
        let body = CapturedBody {
            bytes: bytes::Bytes::copy_from_slice(&packed[..packed.len() / 2]),
            size: packed.len() as u64,
            state: crate::exchange::CaptureState::Truncated,
        };
        let got = decoded_body(&body, &headers("gzip"), 1 << 20).unwrap();
        assert!(!got.is_empty() && got.len() < text.len());
        assert!(text.starts_with(&got));
    }

    #[test]
    fn output_is_capped() {
        let zeros = vec![0u8; 10 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&zeros).unwrap();
        let body = CapturedBody::complete(gz.finish().unwrap());
        assert_eq!(
            decoded_body(&body, &headers("gzip"), 4096).unwrap().len(),
            4096
        );
    }
}
