use std::time::{Duration, Instant};

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

/// A capture as the record hands out, holding up to `limit` bytes.
fn capture_of(limit: usize) -> RequestCapture {
    RequestCapture::new(Recorder::new(limit), Instant::now())
}

fn capture() -> RequestCapture {
    capture_of(1024)
}

#[tokio::test]
async fn the_capture_copies_what_passes_for_every_variant() {
    for (body, want) in [
        (Body::full("owned bytes"), &b"owned bytes"[..]),
        (chunked(&[b"stre", b"amed"]), &b"streamed"[..]),
        (Body::empty(), &b""[..]),
    ] {
        let capture = capture();
        let forwarded = read(RequestBody::new(body, Some(capture.clone()))).await;
        assert_eq!(&forwarded[..], want, "forwarded untouched");
        assert!(capture.is_closed());
        let (captured, done) = capture.take();
        assert_eq!(&captured.bytes[..], want);
        assert_eq!(captured.state, CaptureState::Complete);
        assert!(done.is_some());
    }
}

#[tokio::test]
async fn a_tapped_body_reports_what_an_interceptor_read() {
    let capture = capture();
    let body = RequestBody::tap(chunked(&[b"a=1", b"&b=2"]), Some(capture.clone()));
    match body.into_bytes(100).await.unwrap() {
        Buffered::Bytes(bytes) => assert_eq!(bytes, "a=1&b=2"),
        other => panic!("{other:?}"),
    }
    let (captured, _) = capture.take();
    assert_eq!(&captured.bytes[..], b"a=1&b=2");
    assert_eq!(captured.state, CaptureState::Complete);
}

/// Waits (generously) until `capture` is closed.
async fn closed(capture: &RequestCapture) {
    tokio::time::timeout(Duration::from_secs(30), capture.closed())
        .await
        .expect("the capture ends");
}

#[tokio::test]
async fn a_body_let_go_of_before_its_end_is_read_on_for_the_capture() {
    // The upstream took one frame, answered, and let go of the body.
    let capture = capture();
    let mut body = RequestBody::new(
        chunked(&[b"grant_type=", b"authorization_code", b"&code=x"]),
        Some(capture.clone()),
    );
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "grant_type=");
    drop(body);
    closed(&capture).await;
    let (captured, done) = capture.take();
    assert_eq!(&captured.bytes[..], b"grant_type=authorization_code&code=x");
    assert_eq!(captured.state, CaptureState::Complete);
    assert!(done.is_some());

    // Read on only up to the capture's size: the client is not made to
    // upload the rest for nothing.
    let capture = capture_of(4);
    let endless = Body::stream(StreamBody::new(
        futures_util::stream::iter(vec![
            Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::data(Bytes::from_static(b"def"))),
        ])
        .chain(futures_util::stream::pending()),
    ));
    drop(RequestBody::new(endless, Some(capture.clone())));
    closed(&capture).await;
    let (captured, _) = capture.take();
    assert_eq!(&captured.bytes[..], b"abcd");
    assert_eq!(captured.size, 6);
    assert_eq!(captured.state, CaptureState::Truncated);

    // A body that breaks off while read on is aborted, with what arrived.
    let capture = capture_of(1024);
    let broken = Body::stream(StreamBody::new(futures_util::stream::iter(vec![
        Ok(Frame::data(Bytes::from_static(b"ab"))),
        Err::<Frame<Bytes>, BoxError>("cut".into()),
    ])));
    drop(RequestBody::new(broken, Some(capture.clone())));
    closed(&capture).await;
    let (captured, _) = capture.take();
    assert_eq!(&captured.bytes[..], b"ab");
    assert_eq!(captured.state, CaptureState::Aborted);
}

#[tokio::test]
async fn a_body_nobody_waits_for_is_not_read_on() {
    // The record was published already: the capture is closed.
    let capture = capture();
    let (_, _) = capture.take();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let watched = Body::stream(StreamBody::new(futures_util::stream::once(async move {
        let _ = rx.await;
        Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"late")))
    })));
    drop(RequestBody::new(watched, Some(capture.clone())));
    // Dropping the body dropped the stream at once: nobody reads it.
    assert!(tx.is_closed(), "the body was dropped, not read on");
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
