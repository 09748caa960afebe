//! Stream adapters: replaying peeked bytes, and noticing idle connections.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream whose first bytes were already read; they are served again first.
pub(crate) struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: Bytes, inner: S) -> Self {
        Prefixed { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Whether bytes moved on a connection lately, shared between the stream and
/// the watchdog that closes it when idle. Noting a move is a relaxed load
/// (and a store when the watchdog has cleared the flag), without reading
/// the clock (a read or write happens several times per request on a busy
/// connection); the watchdog looks every quarter of its limit, so a
/// connection is closed after between one and one and a quarter limits
/// without a byte. One watchdog per `Activity`: [`Activity::idle`] clears
/// the flag, so a second one would take the first's observations.
#[derive(Clone)]
pub(crate) struct Activity {
    moved: Arc<AtomicBool>,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Activity {
            moved: Arc::new(AtomicBool::new(false)),
        }
    }

    fn touch(&self) {
        // Only write when the watchdog has cleared it: no cache line is
        // dirtied on every read and write.
        if !self.moved.load(Ordering::Relaxed) {
            self.moved.store(true, Ordering::Relaxed);
        }
    }

    /// Completes once no bytes have moved for at least `limit`.
    pub(crate) async fn idle(&self, limit: Duration) {
        let look = (limit / 4).max(Duration::from_millis(1));
        let mut quiet = Duration::ZERO;
        while quiet < limit {
            tokio::time::sleep(look).await;
            if self.moved.swap(false, Ordering::Relaxed) {
                quiet = Duration::ZERO;
            } else {
                quiet += look;
            }
        }
    }
}

/// A stream that records activity on every successful read or write.
pub(crate) struct Watched<S> {
    inner: S,
    activity: Activity,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Activity) -> Self {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if polled.is_ready() {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if polled.is_ready() {
            self.activity.touch();
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if polled.is_ready() {
            self.activity.touch();
        }
        polled
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn a_connection_is_idle_after_its_limit_without_a_byte_and_not_while_bytes_move() {
        // Bytes move every 10 ms for 2.5 s: never idle for 1 s.
        let limit = Duration::from_secs(1);
        let activity = Activity::new();
        let moving = activity.clone();
        let started = Instant::now();
        let mover = tokio::spawn(async move {
            let mut last = Instant::now();
            while started.elapsed() < Duration::from_millis(2500) {
                moving.touch();
                last = Instant::now();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            last
        });
        activity.idle(limit).await;
        let idle_at = Instant::now();
        assert!(mover.is_finished(), "idle while bytes moved");
        let last_touch = mover.await.unwrap();
        assert!(idle_at >= last_touch + limit, "idle before its limit");

        let quiet = Activity::new();
        let started = Instant::now();
        quiet.idle(Duration::from_millis(200)).await;
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}
