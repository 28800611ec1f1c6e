//! Helper for `bench/tunnel.sh`: a TCP proxy that adds a fixed one-way delay
//! in each direction (RTT = 2 × delay), so a flow-control window smaller than
//! bandwidth × RTT shows up as a throughput ceiling.
//!
//! Usage: `delay_proxy LISTEN_PORT UPSTREAM_PORT DELAY_MS` (loopback only).
//! Bytes are never dropped or reordered, only held back; at most
//! [`IN_FLIGHT`] bytes per direction are held, which is far above what a
//! 50 ms link carries at loopback speeds. (This kernel has no `netem`, and a
//! Python proxy capped the tunnel at about half its loopback throughput.)

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// Bytes held back per direction at most.
const IN_FLIGHT: usize = 256 * 1024 * 1024;
/// Largest read, bytes.
const CHUNK: usize = 256 * 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let [listen, upstream, delay_ms] = args[..] else {
        anyhow::bail!("usage: delay_proxy LISTEN_PORT UPSTREAM_PORT DELAY_MS");
    };
    let delay = Duration::from_millis(delay_ms);
    let listener = TcpListener::bind(("127.0.0.1", listen as u16)).await?;
    loop {
        let (client, _) = listener.accept().await?;
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream as u16)).await else { return };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::join!(pipe(cr, sw, delay), pipe(sr, cw, delay));
        });
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let budget = Arc::new(Semaphore::new(IN_FLIGHT));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = {
        let budget = budget.clone();
        async move {
            loop {
                let mut buf = BytesMut::with_capacity(CHUNK);
                let n = from.read_buf(&mut buf).await.unwrap_or(0);
                let Ok(permit) = budget.clone().acquire_many_owned(n.max(1) as u32).await else { break };
                let _ = tx.send((Instant::now() + delay, buf.freeze(), permit));
                if n == 0 {
                    break;
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, data, permit)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if data.is_empty() || to.write_all(&data).await.is_err() {
                break;
            }
            drop(permit);
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
