use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};

use super::*;
use crate::proxy::record::Recorder;

/// A body streamed in `chunks`.
fn chunked(chunks: &[&'static [u8]]) -> Body {
    let frames: Vec<Result<Frame<Bytes>, BoxError>> = chunks
        .iter()
        .map(|c| Ok(Frame::data(Bytes::from_static(c))))
        .collect();
    Body::stream(StreamBody::new(futures_util::stream::iter(frames)))
}

async fn read(body: impl http_body::Body<Data = Bytes, Error = BoxError>) -> Bytes {
    body.collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn each_variant_yields_its_bytes() {
    let full = Body::full("hello");
    assert_eq!(full.size_hint().exact(), Some(5));
    assert_eq!(full.as_bytes().unwrap(), "hello");
    assert_eq!(read(full).await, "hello");
    let empty = Body::empty();
    assert!(empty.is_end_stream());
    assert_eq!(read(empty).await, "");
    assert!(Body::full("").is_end_stream());
    assert_eq!(read(chunked(&[b"ab", b"cd"])).await, "abcd");
}

#[tokio::test]
async fn into_bytes_reads_within_the_limit_and_gives_back_larger_bodies_whole() {
    match chunked(&[b"ab", b"cd"]).into_bytes(4).await.unwrap() {
        Buffered::Bytes(bytes) => assert_eq!(bytes, "abcd"),
        other => panic!("{other:?}"),
    }
    match chunked(&[b"ab", b"cd", b"ef"]).into_bytes(3).await.unwrap() {
        Buffered::TooLarge(body) => assert_eq!(read(body).await, "abcdef"),
        other => panic!("{other:?}"),
    }
    match Body::full("abcdef").into_bytes(3).await.unwrap() {
        Buffered::TooLarge(body) => assert_eq!(body.as_bytes().unwrap(), "abcdef"),
        other => panic!("{other:?}"),
    }
    let broken = Body::stream(StreamBody::new(futures_util::stream::iter(vec![
        Ok(Frame::data(Bytes::from_static(b"ab"))),
        Err::<Frame<Bytes>, BoxError>("cut".into()),
    ])));
    assert!(broken.into_bytes(10).await.is_err());
}

/// A capture as the record hands out.
fn capture() -> (Arc<Mutex<Recorder>>, Instant) {
    (Arc::new(Mutex::new(Recorder::new(1024))), Instant::now())
}

#[tokio::test]
async fn the_capture_copies_what_passes_for_every_variant() {
    for (body, want) in [
        (Body::full("owned bytes"), &b"owned bytes"[..]),
        (chunked(&[b"stre", b"amed"]), &b"streamed"[..]),
        (Body::empty(), &b""[..]),
    ] {
        let (recorder, start) = capture();
        let forwarded = read(RequestBody::new(body, Some((recorder.clone(), start)))).await;
        assert_eq!(&forwarded[..], want, "forwarded untouched");
        let (captured, done) = lock(&recorder).take();
        assert_eq!(&captured.bytes[..], want);
        assert_eq!(captured.state, CaptureState::Complete);
        assert!(done.is_some());
    }
}

#[tokio::test]
async fn a_tapped_body_reports_what_an_interceptor_read() {
    let (recorder, start) = capture();
    let body = RequestBody::tap(chunked(&[b"a=1", b"&b=2"]), Some((recorder.clone(), start)));
    match body.into_bytes(100).await.unwrap() {
        Buffered::Bytes(bytes) => assert_eq!(bytes, "a=1&b=2"),
        other => panic!("{other:?}"),
    }
    let (captured, _) = lock(&recorder).take();
    assert_eq!(&captured.bytes[..], b"a=1&b=2");
    assert_eq!(captured.state, CaptureState::Complete);
}

#[tokio::test]
async fn a_local_stream_ends_at_shutdown() {
    let shutdown = CancellationToken::new();
    let endless = Body::stream(StreamBody::new(
        futures_util::stream::iter(vec![Ok::<_, BoxError>(Frame::data(Bytes::from_static(
            b"data: 1\n\n",
        )))])
        .chain(futures_util::stream::pending()),
    ));
    let mut body = endless.ending_at(&shutdown);
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "data: 1\n\n");
    let next = tokio::spawn(async move { body.frame().await.is_none() });
    shutdown.cancel();
    assert!(next.await.unwrap(), "the stream ends cleanly");
}
