//! The daemon side of the local API ([`super::ipc`]): accepts connections on `api.sock`,
//! parses the forwarded argv with the CLI's own grammar, and runs it. Repository commands
//! run through the same `cli::execute` as offline, in `spawn_blocking`, with a
//! [`NetworkSource`] so reads fetch missing blocks; their stdout is streamed back as it is
//! written. Network commands (`id`, `peers`, `swarm connect`, `dht inspect`, `findprovs`)
//! are answered here through the network [`Client`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::mpsc;

use super::ipc::{MAX_FRAME, MAX_REQUEST, Request, TAG_DONE, TAG_ERROR, TAG_OUT, frame};
use super::source::NetworkSource;
use crate::api::NodeState;
use crate::cli::args::{Cli, Command, DhtCommand, FindprovsArgs, SwarmCommand};
use crate::cli::output::Ctx;
use crate::net::Client;

/// Accept API connections until the task is dropped.
pub async fn serve(listener: UnixListener, state: Arc<NodeState>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(stream, Arc::clone(&state)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting an API connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(stream: tokio::net::UnixStream, state: Arc<NodeState>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_REQUEST as u64));
    let mut line = String::new();
    let request = match reader.read_line(&mut line).await {
        Ok(_) => serde_json::from_str::<Request>(&line).context("malformed API request"),
        Err(e) => Err(e.into()),
    };
    let result = match request {
        Ok(request) => run(request, &state, &mut write).await,
        Err(e) => Err(e),
    };
    let last = match result {
        Ok(()) => frame(TAG_DONE, &[]),
        Err(e) => frame(TAG_ERROR, crate::cli::format_chain(&e).as_bytes()),
    };
    let _ = write.write_all(&last).await;
    let _ = write.shutdown().await;
}

async fn send_out(write: &mut OwnedWriteHalf, bytes: &[u8]) -> Result<()> {
    for chunk in bytes.chunks(MAX_FRAME) {
        write.write_all(&frame(TAG_OUT, chunk)).await?;
    }
    Ok(())
}

async fn run(request: Request, state: &Arc<NodeState>, write: &mut OwnedWriteHalf) -> Result<()> {
    let cli = match Cli::try_parse_from(&request.argv) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => return send_out(write, e.to_string().as_bytes()).await,
        Err(e) => bail!("{}", e.to_string().trim_end()),
    };
    let client = &state.client;
    if let Some(result) = crate::cluster::commands::run(state.cluster.as_ref(), &cli.command).await
    {
        return send_out(write, result?.as_bytes()).await;
    }
    match cli.command {
        Command::Node(_) => bail!("a daemon is already running on this repository"),
        Command::Init(_) => bail!("the repository exists and a running daemon holds it"),
        Command::Id => bail!("`id` goes through the HTTP API"),
        Command::Peers => {
            let mut out = String::new();
            for p in client.peers().await? {
                let addr = p.addr.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
                let latency = p
                    .latency
                    .map(|l| format!("{}ms", l.as_millis()))
                    .unwrap_or_else(|| "-".into());
                let agent = p.agent.unwrap_or_else(|| "-".into());
                out.push_str(&format!("{}\t{addr}\t{latency}\t{agent}\n", p.peer));
            }
            send_out(write, out.as_bytes()).await
        }
        Command::Swarm(SwarmCommand::Connect { addr }) => {
            let parsed = addr
                .parse()
                .with_context(|| format!("{addr:?} is not a multiaddr"))?;
            let peer = client.dial(parsed).await?;
            send_out(write, format!("connect {peer} success\n").as_bytes()).await
        }
        Command::Dht(DhtCommand::Inspect) => {
            let mut out = String::new();
            let buckets = client.routing_table().await?;
            let total: usize = buckets.iter().map(|b| b.peers.len()).sum();
            out.push_str(&format!(
                "routing table: {total} peers in {} buckets\n",
                buckets.len()
            ));
            for b in buckets {
                out.push_str(&format!("bucket {}: {} peers\n", b.index, b.peers.len()));
                for p in b.peers {
                    out.push_str(&format!("  {p}\n"));
                }
            }
            send_out(write, out.as_bytes()).await
        }
        Command::Findprovs(args) => findprovs(client, &args, write).await,
        command => {
            let result = run_blocking(command, request.cwd, state, write).await;
            let _ = state.pins_changed.try_send(());
            result
        }
    }
}

async fn findprovs(
    client: &Client,
    args: &FindprovsArgs,
    write: &mut OwnedWriteHalf,
) -> Result<()> {
    let cid = crate::content::cid::parse_cid_arg(&args.cid)?;
    let start = Instant::now();
    let mut found = client.find_providers(cid.hash().to_bytes()).await?;
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(deadline);
    while seen.len() < args.num_providers {
        tokio::select! {
            peer = found.recv() => {
                let Some(peer) = peer else { break };
                if seen.insert(peer) {
                    let line = if args.verbose {
                        format!("{peer}\t{}ms\n", start.elapsed().as_millis())
                    } else {
                        format!("{peer}\n")
                    };
                    send_out(write, line.as_bytes()).await?;
                }
            }
            () = &mut deadline => break,
        }
    }
    Ok(())
}

/// Stdout of a command running on a blocking thread, handed to the async side in chunks.
struct ChannelWriter(mpsc::Sender<Vec<u8>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(MAX_FRAME);
        self.0
            .blocking_send(buf[..n].to_vec())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn run_blocking(
    command: Command,
    cwd: PathBuf,
    state: &Arc<NodeState>,
    write: &mut OwnedWriteHalf,
) -> Result<()> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
    let state = Arc::clone(state);
    let runtime = tokio::runtime::Handle::current();
    let task = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut out = std::io::BufWriter::with_capacity(64 << 10, ChannelWriter(tx));
        let source = NetworkSource::new(
            state.repo.blocks(),
            state.bitswap.clone(),
            runtime,
            state.fetch_timeout,
        );
        let mut ctx = Ctx {
            repo: &state.repo,
            source: &source,
            out: &mut out,
            cwd,
            interactive: false,
        };
        crate::cli::execute(&mut ctx, command)?;
        out.flush()?;
        Ok(())
    });
    while let Some(chunk) = rx.recv().await {
        if send_out(write, &chunk).await.is_err() {
            break; // the CLI went away; the command sees a broken pipe
        }
    }
    drop(rx);
    task.await.context("command task failed")?
}
