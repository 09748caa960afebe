use tokio::sync::broadcast;

use super::*;
use crate::exchange::InterventionKind;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn recording() -> (Recording, broadcast::Receiver<Arc<Exchange>>) {
    let feed = ExchangeFeed::new();
    let receiver = feed.subscribe();
    (Recording::new(feed, 8), receiver)
}

fn request(uri: &str) -> (http::request::Parts, Uri) {
    let uri: Uri = uri.parse().unwrap();
    let head = http::Request::post(uri.clone())
        .header("content-type", "text/plain")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    (head, uri)
}

fn response(status: u16) -> http::response::Parts {
    http::Response::builder()
        .status(status)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

/// Every exchange published so far; panics if one was published twice.
fn published(receiver: &mut broadcast::Receiver<Arc<Exchange>>) -> Vec<Arc<Exchange>> {
    let mut out: Vec<Arc<Exchange>> = Vec::new();
    while let Ok(exchange) = receiver.try_recv() {
        assert!(
            out.iter().all(|e| e.id != exchange.id),
            "exchange {} published twice",
            exchange.id
        );
        out.push(exchange);
    }
    out
}

#[test]
fn a_complete_exchange_is_published_once_with_both_bodies() {
    let (recording, mut receiver) = recording();
    let conn = Arc::new(ConnectionInfo::default());
    let (head, uri) = request("https://idp.test/token");
    let mut record = recording.begin(&conn, &head, &uri, true);
    let capture = record.request_capture().unwrap();
    capture.push(b"code=abc");
    capture.end(CaptureState::Complete);
    record.response_head(&response(200), false);
    record.response_data(b"0123");
    record.response_data(b"456789");
    record.response_done();
    record.response_done();
    drop(record);

    let all = published(&mut receiver);
    assert_eq!(all.len(), 1);
    let exchange = &all[0];
    assert_eq!(exchange.request.uri, uri);
    assert_eq!(&exchange.request.body.bytes[..], b"code=abc");
    assert_eq!(exchange.request.body.state, CaptureState::Complete);
    let body = &exchange.response.as_ref().unwrap().body;
    assert_eq!(&body.bytes[..], b"01234567", "capped at the limit");
    assert_eq!(body.size, 10);
    assert_eq!(body.state, CaptureState::Truncated);
    assert!(exchange.error.is_none());
    assert!(exchange.timings.response_done.is_some());
}

#[test]
fn a_failure_is_published_once_with_its_page() {
    let (recording, mut receiver) = recording();
    let conn = Arc::new(ConnectionInfo::default());
    let (head, uri) = request("https://idp.test/x");
    let mut record = recording.begin(&conn, &head, &uri, true);
    record.fail(
        ExchangeError {
            side: FailureSide::Upstream,
            message: "refused".into(),
        },
        Some((&response(502), Bytes::from_static(b"page"))),
    );
    record.response_done();
    drop(record);

    let all = published(&mut receiver);
    assert_eq!(all.len(), 1);
    let response = all[0].response.as_ref().unwrap();
    assert!(response.synthetic);
    assert_eq!(&response.body.bytes[..], b"page");
    assert_eq!(all[0].error.as_ref().unwrap().side, FailureSide::Upstream);
}

#[test]
fn a_record_dropped_early_blames_the_client() {
    let (recording, mut receiver) = recording();
    let conn = Arc::new(ConnectionInfo::default());
    let (head, uri) = request("https://idp.test/x");

    // Before the response head.
    drop(recording.begin(&conn, &head, &uri, true));
    // Mid-body.
    let mut record = recording.begin(&conn, &head, &uri, true);
    record.response_head(&response(200), false);
    record.response_data(b"abc");
    drop(record);

    let all = published(&mut receiver);
    assert_eq!(all.len(), 2);
    assert!(all[0].response.is_none());
    assert_eq!(all[0].error.as_ref().unwrap().side, FailureSide::Client);
    let body = &all[1].response.as_ref().unwrap().body;
    assert_eq!(body.state, CaptureState::Aborted);
    assert_eq!(&body.bytes[..], b"abc");
    assert_eq!(all[1].error.as_ref().unwrap().side, FailureSide::Client);
}

#[test]
fn a_rewritten_request_is_recorded_as_sent_and_marked() {
    let (recording, mut receiver) = recording();
    let conn = Arc::new(ConnectionInfo::default());
    let (head, uri) = request("https://idp.test/a");
    let mut record = recording.begin(&conn, &head, &uri, true);
    let old = record.request_capture().unwrap();
    old.push(b"original");
    let (sent, sent_uri) = request("https://idp.test/b");
    record.request_sent(&sent, &sent_uri);
    let capture = record.request_capture().unwrap();
    capture.push(b"new");
    capture.end(CaptureState::Complete);
    record.intervention(Intervention::new(InterventionKind::Rewritten, "x", "y"));
    record.response_head(&response(204), false);
    record.response_done();

    let all = published(&mut receiver);
    assert_eq!(all[0].request.uri.path(), "/b");
    assert_eq!(&all[0].request.body.bytes[..], b"new");
    let mark = all[0].intervention.as_ref().unwrap();
    assert_eq!(mark.kind, InterventionKind::Rewritten);
    assert_eq!(mark.label, "x");
}

#[test]
fn with_nobody_listening_nothing_is_built() {
    let feed = ExchangeFeed::new();
    drop(feed.subscribe());
    let recording = Recording::new(feed, 8);
    let conn = Arc::new(ConnectionInfo::default());
    let (head, uri) = request("https://idp.test/a");
    let first = recording.begin(&conn, &head, &uri, true);
    assert!(first.request_capture().is_none());
    let second = recording.begin(&conn, &head, &uri, true);
    assert_eq!(
        second.id(),
        first.id() + 1,
        "exchanges are numbered all the same"
    );
}

/// The next published exchange, waiting generously.
async fn next(receiver: &mut broadcast::Receiver<Arc<Exchange>>) -> Arc<Exchange> {
    tokio::time::timeout(Duration::from_secs(30), receiver.recv())
        .await
        .expect("published within 30 s")
        .unwrap()
}

#[tokio::test]
async fn a_finished_response_waits_for_the_rest_of_its_request_body() {
    let (recording, mut receiver) = recording();
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let conn = Arc::new(ConnectionInfo::default());
    let (head, uri) = request("https://idp.test/token");
    let mut record = recording.begin(&conn, &head, &uri, true);
    record.settle_with(&tasks, &shutdown);
    let capture = record.request_capture().unwrap();
    capture.push(b"gran");
    record.response_head(&response(400), false);
    record.response_data(b"{}");
    record.response_done();
    drop(record);
    assert!(
        published(&mut receiver).is_empty(),
        "not published while the request body is on its way"
    );
    capture.push(b"t_ty");
    capture.end(CaptureState::Complete);
    let exchange = next(&mut receiver).await;
    let body = &exchange.request.body;
    assert_eq!(&body.bytes[..], b"grant_ty", "the whole body (capped at 8)");
    assert_eq!(body.state, CaptureState::Complete);
    assert!(exchange.timings.request_done.is_some());
    assert_eq!(&exchange.response.as_ref().unwrap().body.bytes[..], b"{}");
    assert!(exchange.error.is_none());
}

#[tokio::test]
async fn on_shutdown_a_waiting_exchange_is_published_within_the_grace_with_its_body_marked_partial()
{
    let (recording, mut receiver) = recording();
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let conn = Arc::new(ConnectionInfo::default());
    let (head, uri) = request("https://idp.test/token");
    let mut record = recording.begin(&conn, &head, &uri, true);
    // Published as soon as the proxy flushes, not after the usual wait
    // (made endless here).
    record.settle_with(&tasks, &shutdown);
    if let Some(b) = record.building.as_mut() {
        b.settle.as_mut().unwrap().wait = Duration::MAX;
    }
    let capture = record.request_capture().unwrap();
    capture.push(b"part");
    record.response_head(&response(400), false);
    record.response_done();
    shutdown.cancel();
    tasks.close();
    tokio::time::timeout(Duration::from_secs(30), tasks.wait())
        .await
        .expect("the wait ends with the shutdown");
    let all = published(&mut receiver);
    assert_eq!(all.len(), 1);
    let body = &all[0].request.body;
    assert_eq!(&body.bytes[..], b"part");
    assert_eq!(body.state, CaptureState::Aborted, "marked partial");
    assert!(all[0].timings.request_done.is_none());
    assert!(capture.is_closed(), "nobody reads the body on");
}

/// A consumer that glances (wants `/signin`, and HTML pages) and takes
/// every exchange it is offered.
fn glancing() -> (Recording, crate::proxy::ExchangeStream) {
    let feed = ExchangeFeed::new();
    let glance: crate::proxy::Glancer = Arc::new(|heads: &Heads<'_>| {
        if heads.uri.path() == "/signin" {
            return Glance::Wanted;
        }
        let Some((_, headers)) = heads.response else {
            return Glance::Undecided;
        };
        match (headers.get("content-type"), heads.body_start) {
            (Some(ct), _) if ct == "text/html" => Glance::Wanted,
            (Some(_), _) => Glance::Unwanted,
            // Untyped: its first bytes decide.
            (None, None) => Glance::Undecided,
            (None, Some(body)) if body.trim_ascii_start().starts_with(b"<") => Glance::Wanted,
            (None, Some(_)) => Glance::Unwanted,
        }
    });
    let stream = feed.consume_glancing(
        glance,
        Arc::new(|_: &Exchange| crate::proxy::Lane::Vital),
        crate::proxy::Allowance {
            vital_bytes: 1 << 20,
            bulk_bytes: 0,
        },
    );
    (Recording::new(feed, 64), stream)
}

fn get(uri: &str) -> (http::request::Parts, Uri) {
    let uri: Uri = uri.parse().unwrap();
    let head = http::Request::get(uri.clone())
        .body(())
        .unwrap()
        .into_parts()
        .0;
    (head, uri)
}

fn typed(status: u16, content_type: &str) -> http::response::Parts {
    let mut head = response(status);
    head.headers
        .insert("content-type", content_type.parse().unwrap());
    head
}

#[test]
fn with_only_glancing_consumers_an_exchange_is_built_when_its_heads_are_wanted() {
    let (recording, mut stream) = glancing();
    let conn = Arc::new(ConnectionInfo::default());

    // Wanted on its request head: built from the start.
    let (head, uri) = get("https://app.test/signin");
    let mut record = recording.begin(&conn, &head, &uri, false);
    assert!(record.building.is_some());
    record.response_head(&typed(200, "application/json"), false);
    record.response_data(b"{}");
    record.response_done();

    // Undecided, then wanted for its HTML answer: built then, whole.
    let (head, uri) = get("https://app.test/page");
    let mut record = recording.begin(&conn, &head, &uri, false);
    assert!(record.building.is_none() && record.pending.is_some());
    record.response_head(&typed(200, "text/html"), false);
    record.response_data(b"<html>");
    record.response_done();

    // Undecided, then unwanted: nothing built, only counted.
    let (head, uri) = get("https://app.test/app.js");
    let mut record = recording.begin(&conn, &head, &uri, false);
    record.response_head(&typed(200, "text/javascript"), false);
    assert!(record.building.is_none() && record.pending.is_none());
    record.response_data(b"let x");
    record.response_done();

    // Untyped answers: the first bytes beyond white space decide.
    let (head, uri) = get("https://app.test/untyped-page");
    let mut record = recording.begin(&conn, &head, &uri, false);
    record.response_head(&response(200), false);
    record.response_data(b"  \n");
    assert!(record.building.is_some());
    record.response_data(b"<form>");
    record.response_done();
    let (head, uri) = get("https://app.test/blob");
    let mut record = recording.begin(&conn, &head, &uri, false);
    record.response_head(&response(200), false);
    record.response_data(&[0, 159, 146]);
    assert!(record.building.is_none(), "let go at its first bytes");
    record.response_data(&[1, 2, 3]);
    record.response_done();
    let (head, uri) = get("https://app.test/empty");
    let mut record = recording.begin(&conn, &head, &uri, false);
    record.response_head(&response(204), false);
    record.response_done();

    // Undecided, and the client went away before an answer.
    let (head, uri) = get("https://app.test/gone");
    drop(recording.begin(&conn, &head, &uri, false));

    // A body follows: built so it is captured.
    let (head, uri) = request("https://app.test/form");
    let record = recording.begin(&conn, &head, &uri, true);
    assert!(record.building.is_some());
    drop(record);

    let mut got = Vec::new();
    while let Some(crate::proxy::Delivery::Exchange(e)) = stream.try_recv() {
        got.push(e);
    }
    let paths: Vec<&str> = got.iter().map(|e| e.request.uri.path()).collect();
    assert_eq!(paths, ["/signin", "/page", "/untyped-page", "/form"]);
    assert_eq!(
        &got[2].response.as_ref().unwrap().body.bytes[..],
        b"  \n<form>"
    );
    let page = &got[1];
    assert_eq!(&page.response.as_ref().unwrap().body.bytes[..], b"<html>");
    assert_eq!(page.request.body.state, CaptureState::Complete);
    assert_eq!(page.request.body.size, 0);
    assert_eq!(
        stream.skipped(),
        4,
        "the asset, the blob, the empty answer and the abandoned request"
    );
}

/// Sightings are taken from what the record has at hand, whether the
/// exchange is built or not (here nobody consumes, so nothing is built),
/// once each, with how it ended.
#[test]
fn with_sightings_on_every_exchange_is_sighted_once_built_or_not() {
    let feed = ExchangeFeed::new();
    let recording = Recording::new(feed.clone(), 8);
    let conn = Arc::new(ConnectionInfo::default());

    // Off: nothing is gathered.
    let (head, uri) = request("http://app.test/before");
    let mut record = recording.begin(&conn, &head, &uri, false);
    record.response_head(&response(200), false);
    record.response_done();
    let sightings = feed.sight();
    let mut batch = Vec::new();
    assert_eq!(sightings.take(&mut batch), Some(0));
    assert!(batch.is_empty(), "{batch:?}");

    // A complete exchange, with its size and type.
    let (head, uri) = request("http://app.test/page?q=1");
    let mut record = recording.begin(&conn, &head, &uri, false);
    assert!(record.request_capture().is_none(), "nothing is built");
    let mut answer = response(201);
    answer
        .headers
        .insert("content-type", "text/html".parse().unwrap());
    record.response_head(&answer, false);
    record.response_data(b"0123");
    record.response_data(b"456789");
    record.response_done();
    record.response_done();
    drop(record);

    // A client gone before the answer, and a failure with the proxy's page.
    let (head, uri) = request("http://app.test/gone");
    drop(recording.begin(&conn, &head, &uri, false));
    let (head, uri) = request("http://down.test/x");
    let mut record = recording.begin(&conn, &head, &uri, false);
    record.fail(
        ExchangeError {
            side: FailureSide::Upstream,
            message: "connection refused".into(),
        },
        Some((&response(502), Bytes::from_static(b"no upstream"))),
    );
    drop(record);

    assert_eq!(sightings.take(&mut batch), Some(0));
    let ids: Vec<u64> = batch.iter().map(|s| s.id).collect();
    assert_eq!(ids, [2, 3, 4]);
    let page = &batch[0];
    assert_eq!(page.uri, "http://app.test/page?q=1");
    assert_eq!(page.status, Some(http::StatusCode::CREATED));
    assert_eq!(page.size, Some(10));
    assert_eq!(page.content_type.as_ref().unwrap(), "text/html");
    assert!(page.duration.is_some() && page.error.is_none());
    assert_eq!(batch[1].status, None);
    assert!(
        batch[1]
            .error
            .as_deref()
            .unwrap()
            .contains("client went away"),
        "{:?}",
        batch[1].error
    );
    assert_eq!(batch[2].status, Some(http::StatusCode::BAD_GATEWAY));
    assert_eq!(batch[2].size, Some(11));
    assert_eq!(batch[2].error.as_deref(), Some("connection refused"));

    // Off again once the handle is gone.
    drop(sightings);
    assert!(!feed.sighting());
}

/// A proxy busier than the list takes: sightings beyond the buffer are
/// counted, not kept.
#[test]
fn sightings_beyond_the_buffer_are_counted_as_missed() {
    let feed = ExchangeFeed::new();
    let recording = Recording::new(feed.clone(), 8);
    let conn = Arc::new(ConnectionInfo::default());
    let sightings = feed.sight();
    let (head, uri) = request("http://app.test/x");
    for _ in 0..8192 + 5 {
        let mut record = recording.begin(&conn, &head, &uri, false);
        record.response_head(&response(204), false);
        record.response_done();
    }
    let mut batch = Vec::new();
    assert_eq!(sightings.take(&mut batch), Some(5));
    assert_eq!(batch.len(), 8192);
    assert_eq!(sightings.take(&mut batch), Some(0));
}
