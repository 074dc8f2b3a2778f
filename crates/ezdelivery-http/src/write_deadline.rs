//! A deadline on a connection's writes: one that cannot move a byte for
//! that long fails, and hyper closes the connection.
//!
//! hyper has no write timeout. A client that sends requests (pipelined, or
//! one whose answer is large, or a live stream) and never reads the
//! answers fills the socket's buffers, and the server's write then waits
//! for ever: the connection, its slot under `max_connections` and a
//! graceful shutdown waited on it, all held by a client that reads
//! nothing. The deadline is armed only while a write is waiting, so an
//! idle connection or a quiet live stream is not timed by it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `inner`, whose writes (and flushes) fail with `TimedOut` once one has
/// waited `limit` without the peer taking a byte.
pub(crate) struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Running while a write waits; `None` once one makes progress.
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub(crate) fn new(inner: S, limit: Duration) -> WriteDeadline<S> {
        WriteDeadline { inner, limit, waiting: None }
    }

    /// What to answer for a write that `polled` the inner stream.
    fn timed<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.waiting = None;
            return polled;
        }
        let limit = self.limit;
        let waiting = self.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took nothing of the answer for {} ms", limit.as_millis()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.timed(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.timed(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.timed(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.timed(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A peer that reads nothing: writes succeed until the pipe's buffer
    /// is full, then the next one fails once the deadline passes (paused
    /// time: no real waiting).
    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_takes_fails_at_the_deadline() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut stream = WriteDeadline::new(ours, Duration::from_secs(5));
        stream.write_all(&[0; 64]).await.expect("the buffer takes the first 64 bytes");
        let started = tokio::time::Instant::now();
        // Bounded, so that without a deadline the test fails, not hangs.
        let stalled = tokio::time::timeout(Duration::from_secs(60), stream.write_all(&[0; 1]))
            .await
            .expect("the write fails before a minute")
            .expect_err("the peer never reads");
        assert_eq!(stalled.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5), "failed at the deadline, not before");
    }

    /// The deadline is per wait: a peer that reads, however slowly, keeps
    /// the connection.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_reads_within_the_deadline_keeps_the_connection() {
        use tokio::io::AsyncReadExt;
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut stream = WriteDeadline::new(ours, Duration::from_secs(5));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0; 64];
            loop {
                tokio::time::sleep(Duration::from_secs(4)).await;
                match theirs.read(&mut chunk).await {
                    Ok(0) | Err(_) => return got.len(),
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
            }
        });
        stream.write_all(&[7; 64 * 4]).await.expect("each wait is shorter than the deadline");
        stream.shutdown().await.expect("shut down");
        drop(stream);
        assert_eq!(reader.await.expect("the reader"), 64 * 4);
    }
}
