//! Commands about the node itself, its peers and the DHT: `id`, `peers`, `swarm connect`,
//! `dht inspect`, `findprovs`. Offline `id` shows the repository's identity with no
//! addresses; the others need the running daemon and call its `swarm/peers`,
//! `swarm/connect`, `stats/dht` and `routing/findprovs`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Backend;
use super::args::{DhtCommand, FindprovsArgs, SwarmCommand};
use super::output::{cid_arg, line};
use super::remote::{Remote, args};
use crate::ops::id::IdInfo;

pub(super) fn id(backend: &Backend<'_>, out: &mut dyn std::io::Write) -> Result<()> {
    let info: IdInfo = match backend {
        Backend::Local(repo) => {
            let key = crate::net::identity::load_or_create(repo.path())?;
            IdInfo::new(&key.public(), &[])
        }
        Backend::Remote(remote) => remote.json("id", &Vec::new())?,
    };
    serde_json::to_writer_pretty(&mut *out, &info)?;
    out.write_all(b"\n")?;
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SwarmPeers {
    peers: Option<Vec<SwarmPeer>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SwarmPeer {
    addr: String,
    peer: String,
    latency: String,
    identify: Option<Identify>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Identify {
    agent_version: String,
}

/// `peers`: peer ID, address, latency, agent; `-` for what is unknown.
pub(super) fn peers(remote: &Remote, out: &mut dyn std::io::Write) -> Result<()> {
    let params = vec![
        ("latency", "true".to_owned()),
        ("identify", "true".to_owned()),
    ];
    let answer: SwarmPeers = remote.json("swarm/peers", &params)?;
    for p in answer.peers.unwrap_or_default() {
        let or_dash = |s: String| if s.is_empty() { "-".to_owned() } else { s };
        let latency = parse_duration(&p.latency)
            .map(|l| format!("{}ms", l.as_millis()))
            .unwrap_or_else(|| "-".into());
        let agent = or_dash(p.identify.map(|i| i.agent_version).unwrap_or_default());
        line(
            out,
            format_args!("{}\t{}\t{latency}\t{agent}", p.peer, or_dash(p.addr)),
        )?;
    }
    Ok(())
}

/// A duration as Rust's `Debug` or Go's `String` writes it (`1.5ms`, `250µs`, `2s`).
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let nanos_per: u128 = match unit {
        "ns" => 1,
        "µs" | "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(nanos_per)?;
    let mut scale = nanos_per;
    for digit in fraction.chars() {
        scale /= 10;
        nanos += u128::from(digit.to_digit(10)?) * scale;
    }
    Some(Duration::from_nanos(u64::try_from(nanos).ok()?))
}

pub(super) fn swarm(
    remote: &Remote,
    cmd: SwarmCommand,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let SwarmCommand::Connect { addr } = cmd;
    addr.parse::<libp2p::Multiaddr>()
        .with_context(|| format!("{addr:?} is not a multiaddr"))?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Strings {
        strings: Vec<String>,
    }
    let answer: Strings = remote.json("swarm/connect", &args(&[addr]))?;
    for s in answer.strings {
        line(out, format_args!("{s}"))?;
    }
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DhtStats {
    buckets: Vec<DhtBucket>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DhtBucket {
    index: u32,
    peers: Vec<DhtPeer>,
}

#[derive(serde::Deserialize)]
struct DhtPeer {
    #[serde(rename = "ID")]
    id: String,
}

pub(super) fn dht(remote: &Remote, cmd: DhtCommand, out: &mut dyn std::io::Write) -> Result<()> {
    let DhtCommand::Inspect = cmd;
    let stats: DhtStats = remote.json("stats/dht", &Vec::new())?;
    let total: usize = stats.buckets.iter().map(|b| b.peers.len()).sum();
    line(
        out,
        format_args!(
            "routing table: {total} peers in {} buckets",
            stats.buckets.len()
        ),
    )?;
    for b in stats.buckets {
        line(
            out,
            format_args!("bucket {}: {} peers", b.index, b.peers.len()),
        )?;
        for p in b.peers {
            line(out, format_args!("  {}", p.id))?;
        }
    }
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoutingEvent {
    #[serde(rename = "Type")]
    kind: u8,
    responses: Option<Vec<Provider>>,
}

#[derive(serde::Deserialize)]
struct Provider {
    #[serde(rename = "ID")]
    id: String,
}

/// Kubo's routing event type of a found provider.
const PROVIDER_EVENT: u8 = 4;

pub(super) fn findprovs(
    remote: &Remote,
    a: &FindprovsArgs,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    cid_arg(&a.cid)?;
    let start = Instant::now();
    let mut params = args(std::slice::from_ref(&a.cid));
    params.push(("num-providers", a.num_providers.to_string()));
    let mut seen = std::collections::HashSet::new();
    remote.lines(
        "routing/findprovs",
        &params,
        None,
        &mut |e: RoutingEvent| {
            if e.kind != PROVIDER_EVENT {
                return Ok(());
            }
            for p in e.responses.unwrap_or_default() {
                if !seen.insert(p.id.clone()) {
                    continue;
                }
                if a.verbose {
                    line(
                        out,
                        format_args!("{}\t{}ms", p.id, start.elapsed().as_millis()),
                    )?;
                } else {
                    line(out, format_args!("{}", p.id))?;
                }
                out.flush()?;
            }
            Ok(())
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_debug_and_go_forms() {
        let check = |text: &str, nanos: u64| {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_nanos(nanos)),
                "{text}"
            );
        };
        check("1.234567ms", 1_234_567);
        check("250µs", 250_000);
        check("12.5us", 12_500);
        check("2s", 2_000_000_000);
        check("0ns", 0);
        check("999.999999µs", 999_999);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration("1.5h"), None);
    }
}
