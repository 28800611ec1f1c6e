//! Copying bytes both ways between two connections (visitor ↔ stream in the
//! relay, stream ↔ target in the agent) without a buffer per connection.
//!
//! `tokio::io::copy_bidirectional` owns two buffers for as long as the
//! connection is open, idle keep-alive connections included (32 KiB each at
//! our sizes, 8 MiB at 256 visitors). Here every read lands in one scratch
//! buffer per worker thread and is written on at once; a connection owns
//! bytes only while its writer is slower than its reader, and gives them
//! back as soon as the writer caught up.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest read, bytes: also the most a connection holds per direction.
pub const CHUNK: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; CHUNK].into_boxed_slice());
}

/// One direction of the copy.
#[derive(Default)]
struct Direction {
    /// Bytes read but not yet taken by the writer.
    held: Vec<u8>,
    /// How much of `held` was written.
    pos: usize,
    /// The reader reached its end; the writer is shut down next.
    eof: bool,
    /// Bytes were written since the last flush.
    unflushed: bool,
    done: bool,
    total: u64,
}

impl Direction {
    fn poll_copy<R, W>(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        loop {
            while self.pos < self.held.len() {
                let n = ready!(self.poll_write(cx, w, None))?;
                self.pos += n;
            }
            if !self.held.is_empty() {
                self.held = Vec::new();
                self.pos = 0;
            }
            if self.eof {
                ready!(Pin::new(&mut *w).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            let read = SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let mut buf = ReadBuf::new(&mut scratch[..]);
                match Pin::new(&mut *r).poll_read(cx, &mut buf) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                        self.eof = true;
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Ok(())) => {
                        let data = buf.filled();
                        let mut pos = 0;
                        while pos < data.len() {
                            match self.poll_write(cx, w, Some(&data[pos..])) {
                                Poll::Ready(Ok(n)) => pos += n,
                                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                                Poll::Pending => {
                                    // The writer is behind: keep the rest until it catches up.
                                    self.held = data[pos..].to_vec();
                                    break;
                                }
                            }
                        }
                        Poll::Ready(Ok(()))
                    }
                }
            });
            match read {
                Poll::Ready(result) => result?,
                Poll::Pending => {
                    if self.unflushed {
                        ready!(Pin::new(&mut *w).poll_flush(cx))?;
                        self.unflushed = false;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Writes `data`, or the held bytes when `data` is `None`.
    fn poll_write<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        w: &mut W,
        data: Option<&[u8]>,
    ) -> Poll<io::Result<usize>> {
        let data = data.unwrap_or(&self.held[self.pos..]);
        let n = ready!(Pin::new(&mut *w).poll_write(cx, data))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        self.unflushed = true;
        self.total += n as u64;
        Poll::Ready(Ok(n))
    }
}

/// Copies `a` → `b` and `b` → `a` until both reached their end, shutting
/// each writer down after its reader's end (so half-closes pass through).
/// Once one direction ended, the other has `half_close` to end too; after
/// that the copy fails with `TimedOut` and both sides are dropped (a peer
/// that closed while the other side stays silent would otherwise keep the
/// connection, and its socket in CLOSE_WAIT, forever).
/// Returns the bytes copied each way; the first error ends both.
pub async fn copy_bidirectional<A, B>(a: &mut A, b: &mut B, half_close: Duration) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut a_to_b = Direction::default();
    let mut b_to_a = Direction::default();
    let mut deadline: Option<Pin<Box<tokio::time::Sleep>>> = None;
    poll_fn(|cx| {
        let ab = a_to_b.poll_copy(cx, a, b)?;
        let ba = b_to_a.poll_copy(cx, b, a)?;
        if ab.is_ready() && ba.is_ready() {
            return Poll::Ready(Ok((a_to_b.total, b_to_a.total)));
        }
        if ab.is_ready() || ba.is_ready() {
            let sleep = deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(half_close)));
            ready!(sleep.as_mut().poll(cx));
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "half-closed for too long")));
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn bytes_pass_both_ways_intact_through_slow_writers_and_half_closes() {
        // 64-byte pipes make nearly every write wait, so most bytes go
        // through the held buffer.
        let (mut client, mut a) = duplex(64);
        let (mut b, mut server) = duplex(64);
        let copier = tokio::spawn(async move { copy_bidirectional(&mut a, &mut b, Duration::from_secs(30)).await });
        let up = pattern(300_000);
        let down = pattern(500_000);
        let (up2, down2) = (up.clone(), down.clone());
        let server_side = tokio::spawn(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap(); // the client's half-close arrives
            server.write_all(&down2).await.unwrap();
            server.shutdown().await.unwrap();
            got
        });
        client.write_all(&up2).await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let server_got = server_side.await.unwrap();
        assert_eq!(Sha256::digest(&server_got), Sha256::digest(&up), "client → server");
        assert_eq!(Sha256::digest(&got), Sha256::digest(&down), "server → client");
        let (ab, ba) = copier.await.unwrap().unwrap();
        assert_eq!((ab, ba), (up.len() as u64, down.len() as u64));
    }

    #[tokio::test]
    async fn a_reset_side_ends_the_copy_with_its_error() {
        let (client, mut a) = duplex(1024);
        let (mut b, server) = duplex(1024);
        drop(server);
        let copier = tokio::spawn(async move { copy_bidirectional(&mut a, &mut b, Duration::from_secs(30)).await });
        let mut client = client;
        // Writing towards a dropped peer fails (broken pipe) and ends the copy.
        let _ = client.write_all(b"hello").await;
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), copier).await.unwrap().unwrap();
        assert!(result.is_err(), "{result:?}");
    }

    #[tokio::test]
    async fn an_idle_connection_holds_no_bytes() {
        let (mut client, mut a) = duplex(64);
        let (mut b, mut server) = duplex(1 << 20);
        let mut ab = Direction::default();
        client.write_all(&pattern(64)).await.unwrap();
        // One pass: the 64 bytes go straight through, then the reader waits.
        let polled = poll_fn(|cx| Poll::Ready(ab.poll_copy(cx, &mut a, &mut b))).await;
        assert!(polled.is_pending());
        assert_eq!(ab.total, 64);
        assert_eq!(ab.held.capacity(), 0, "nothing is kept while the connection is idle");
        let mut got = [0u8; 64];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got.to_vec(), pattern(64));
    }

    #[tokio::test]
    async fn a_connection_half_closed_for_too_long_is_closed() {
        let (mut client, mut a) = duplex(1024);
        let (mut b, mut server) = duplex(1024);
        let copier = tokio::spawn(async move { copy_bidirectional(&mut a, &mut b, Duration::from_millis(200)).await });
        // The client is done sending; the server reads that end and then says nothing.
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        let result = tokio::time::timeout(Duration::from_secs(5), copier).await.expect("the copy ended").unwrap();
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::TimedOut);
        // Both sides see the connection end.
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0);
        assert!(server.write_all(b"late").await.is_err());
    }
}
