//! Byte counting on the visitor side of a relayed stream: the visitor's
//! socket is wrapped once per connection with the counters of its agent
//! session and of its tunnel, and every read or write adds to them with
//! relaxed atomics (no lock, no lookup per chunk). Counts move while a
//! long-lived connection is open, not only when it ends.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Counters;

/// Counts what passes through `inner`: reads are visitor → agent
/// (`bytes_in`), writes agent → visitor (`bytes_out`).
pub(super) struct Counted<S> {
    inner: S,
    counters: [Arc<Counters>; 2],
}

impl<S> Counted<S> {
    pub(super) fn new(inner: S, counters: [Arc<Counters>; 2]) -> Self {
        Counted { inner, counters }
    }

    /// Adds bytes that were read before the wrapper existed (the request head).
    pub(super) fn count_in(&self, n: usize) {
        for c in &self.counters {
            c.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    fn count_out(&self, n: usize) {
        for c in &self.counters {
            c.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            self.count_in(buf.filled().len() - before);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.count_out(n);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_and_writes_count_into_both_sets() {
        let (a, mut b) = tokio::io::duplex(64);
        let (agent, tunnel) = (Arc::new(Counters::default()), Arc::new(Counters::default()));
        let mut counted = Counted::new(a, [agent.clone(), tunnel.clone()]);
        counted.count_in(10);
        b.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        counted.read_exact(&mut buf).await.unwrap();
        counted.write_all(b"world!!").await.unwrap();
        for c in [&agent, &tunnel] {
            assert_eq!(c.bytes_in.load(Ordering::Relaxed), 15);
            assert_eq!(c.bytes_out.load(Ordering::Relaxed), 7);
        }
    }
}
