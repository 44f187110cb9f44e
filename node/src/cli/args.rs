//! Command-line grammar of `distribute`, declared with clap. Names and flags follow Kubo's
//! `ipfs` so scripts port over.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::content::chunker::ChunkerSpec;
use crate::content::importer::Profile;

#[derive(Debug, Parser)]
#[command(
    name = "distribute",
    version,
    about = "IPFS-compatible content-addressed storage node"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Repository folder (created on first use).
    #[arg(long, global = true, env = "DISTRIBUTE_REPO")]
    pub repo: Option<PathBuf>,
    /// Log level or tracing filter (error, warn, info, debug, trace, or `distribute=debug`).
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// RPC API bearer tokens, one per line. `node`: requests must carry one of them. Other
    /// commands: the first is sent to the daemon (see also $DISTRIBUTE_API_TOKEN).
    #[arg(long, global = true)]
    pub api_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a repository.
    Init(InitArgs),
    /// Add files or directories, print their CIDs.
    Add(AddArgs),
    /// Write a file or directory tree out of the repository.
    Get(GetArgs),
    /// Print a file's bytes.
    Cat(CatArgs),
    /// List a directory.
    Ls(LsArgs),
    /// Pin, unpin and list pins (`pin <cid>` is `pin add <cid>`).
    #[command(args_conflicts_with_subcommands = true)]
    Pin(PinArgs),
    /// Export and import DAGs as CAR files.
    #[command(subcommand)]
    Dag(DagCommand),
    /// Raw block access.
    #[command(subcommand)]
    Block(BlockCommand),
    /// Repository maintenance.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// CID conversion.
    #[command(subcommand)]
    Cid(CidCommand),
    /// Run the peer-to-peer node (daemon); other commands then go through it.
    Node(NodeArgs),
    /// Print this node's peer ID, addresses and agent (JSON).
    Id,
    /// List connected peers: peer ID, address, latency, agent.
    Peers,
    /// Connections to other peers.
    #[command(subcommand)]
    Swarm(SwarmCommand),
    /// The distributed hash table.
    #[command(subcommand)]
    Dht(DhtCommand),
    /// Find peers that provide a CID, through the DHT.
    Findprovs(FindprovsArgs),
    /// Cluster membership, pin status, draining (needs a node run with --cluster-secret-file).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Where a cluster pin is held: CID, size, local copy, pinned, holders.
    Status(StatusArgs),
    /// Run a node whose HTTP gateway listens on --port (all interfaces).
    Gateway(GatewayArgs),
    /// NFT assets: media plus ERC-721/1155 metadata in one directory.
    #[command(subcommand)]
    Nft(NftCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// List cluster members: peer ID, state, zone, free space, seconds since last heard.
    Peers,
    /// Status of one cluster pin, or of all (JSON, as the API returns it).
    Status { cid: Option<String> },
    /// Move every pin off a peer (idempotent: run again to see progress).
    Drain { peer: String },
    /// Move this node's pins elsewhere, then stop the node.
    Leave,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    pub cid: String,
    /// Also list each holder and its state.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Replication options of a cluster pin.
#[derive(Debug, Clone, Default, Args)]
pub struct ReplicationArgs {
    /// Copies to keep (sets both the minimum and the maximum).
    #[arg(long, conflicts_with_all = ["replication_min", "replication_max"])]
    pub replication: Option<u32>,
    /// Fewest copies for the pin to count as pinned.
    #[arg(long)]
    pub replication_min: Option<u32>,
    /// Most copies the cluster allocates.
    #[arg(long)]
    pub replication_max: Option<u32>,
    /// A name for the pin.
    #[arg(long)]
    pub name: Option<String>,
    /// Return only once every peer the pin is allocated to reports it pinned (non-zero exit
    /// when it fails).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (the pin stays). 0: no limit.
    #[arg(long, value_name = "SECS", requires = "wait")]
    pub wait_timeout: Option<u64>,
}

impl ReplicationArgs {
    /// Whether any cluster option was given.
    pub fn any(&self) -> bool {
        self.replication.is_some()
            || self.replication_min.is_some()
            || self.replication_max.is_some()
            || self.name.is_some()
            || self.wait
    }

    /// (min, max) as given; `--replication N` is both.
    pub fn bounds(&self) -> (Option<u32>, Option<u32>) {
        match self.replication {
            Some(n) => (Some(n), Some(n)),
            None => (self.replication_min, self.replication_max),
        }
    }
}

/// `host:port`, or `:port` for all IPv4 interfaces.
fn socket_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse()
        .map_err(|_| format!("{text:?} is not an address: expected host:port or :port"))
}

#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Gateway port, bound on all interfaces (`--gateway ADDR` picks the address instead).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    #[command(flatten)]
    pub node: NodeArgs,
}

impl GatewayArgs {
    /// The node's options, with the gateway on.
    pub fn node_args(&self) -> NodeArgs {
        let mut node = self.node.clone();
        node.gateway
            .get_or_insert_with(|| std::net::SocketAddr::from(([0, 0, 0, 0], self.port)));
        node
    }
}

#[derive(Debug, Subcommand)]
pub enum NftCommand {
    /// Put a media file and its metadata.json in one directory, pin it, print the metadata URI.
    Add(NftAddArgs),
}

#[derive(Debug, Args)]
pub struct NftAddArgs {
    /// The token's name.
    #[arg(long)]
    pub name: String,
    /// The token's description.
    #[arg(long)]
    pub description: Option<String>,
    /// A trait as `key=value` (repeatable); integer values become numbers.
    #[arg(long = "attribute")]
    pub attributes: Vec<String>,
    /// The media file (image, video, model …).
    pub media: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProvideStrategy {
    /// Every block in the store.
    All,
    /// The root of every recursive pin (what `add` pins).
    Roots,
    /// Every pin's root, recursive and direct.
    Pinned,
}

#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Listen addresses: `:PORT` (TCP and QUIC on all IPv4 interfaces), or multiaddrs,
    /// comma-separated. `:0` picks free ports.
    #[arg(long, default_value = ":4001")]
    pub listen: String,
    /// Peers to connect to at start (multiaddr, ideally ending in /p2p/<peer id>).
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// Do not discover peers on the local network.
    #[arg(long)]
    pub no_mdns: bool,
    /// Answer only outbound DHT queries (DHT client mode); server mode is the default.
    #[arg(long)]
    pub kad_client: bool,
    /// Most connections held at once (inbound and outbound); more are refused.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Serve Prometheus metrics, /health and /ready on this address.
    #[arg(long)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Private network key (Kubo swarm.key format): TCP only, only peers with the key.
    #[arg(long)]
    pub network_key: Option<PathBuf>,
    /// What to announce in the DHT.
    #[arg(long, value_enum, default_value_t = ProvideStrategy::Roots)]
    pub provide_strategy: ProvideStrategy,
    /// Seconds between full re-announcements (provider records expire after 48 h).
    #[arg(long, default_value_t = 12 * 3600)]
    pub reprovide_interval: u64,
    /// Seconds a read may wait for missing blocks from the network.
    #[arg(long, default_value_t = 120)]
    pub fetch_timeout: u64,
    /// Join the cluster whose shared secret is in this file (nodes with the same secret
    /// replicate each other's cluster pins).
    #[arg(long)]
    pub cluster_secret_file: Option<PathBuf>,
    /// Default copies of a cluster pin (both bounds; 3 when no replication flag is given).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub replication: Option<u32>,
    /// Default least copies of a cluster pin (overrides --replication's lower bound).
    #[arg(long, env = "DISTRIBUTE_REPLICATION_MIN", value_parser = clap::value_parser!(u32).range(1..))]
    pub replication_min: Option<u32>,
    /// Default most copies of a cluster pin (overrides --replication's upper bound).
    #[arg(long, env = "DISTRIBUTE_REPLICATION_MAX", value_parser = clap::value_parser!(u32).range(1..))]
    pub replication_max: Option<u32>,
    /// Failure-domain label; copies of a pin spread across zones first.
    #[arg(long)]
    pub zone: Option<String>,
    /// Seconds without a heartbeat before a member counts as down.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_timeout: u64,
    /// Seconds a silent member keeps its pins before they are copied elsewhere.
    #[arg(long, default_value_t = 120)]
    pub rereplicate_after: u64,
    /// Seconds a leaving node (SIGTERM, `cluster leave`) waits for its pins to be held elsewhere.
    #[arg(long, default_value_t = 300)]
    pub drain_timeout: u64,
    /// MiB per second the cluster scrub re-hashes (0: no scrub).
    #[arg(long, default_value_t = 2)]
    pub scrub_rate: u64,
    /// Seconds between scrub passes over the cluster pins held here.
    #[arg(long, default_value_t = 24 * 3600)]
    pub scrub_interval: u64,
    /// Seconds a cluster pin removal is remembered at least; it is forgotten after that once
    /// every member has seen it. A member cut off for longer may lose its changes.
    #[arg(long, default_value_t = 24 * 3600)]
    pub tombstone_ttl: u64,
    /// Serve the HTTP RPC API on this address (port 0 picks a free one). Off loopback it
    /// needs --api-token-file.
    #[arg(long, default_value = "127.0.0.1:5001")]
    pub api: std::net::SocketAddr,
    /// Serve the HTTP gateway on this address (`host:port`, or `:port` for all interfaces).
    #[arg(long, value_parser = socket_addr)]
    pub gateway: Option<std::net::SocketAddr>,
    /// Seconds a gateway request may wait for blocks from the network before it gets a 504.
    #[arg(long, default_value_t = 30)]
    pub retrieval_timeout: u64,
    /// MiB of recently served blocks the gateway keeps in memory (0: none).
    #[arg(long, default_value_t = crate::gateway::cache::DEFAULT_CACHE_MIB)]
    pub gateway_cache_mib: u64,
    /// Subdomain gateway mode: serve `<cidv1>.ipfs.<HOST>` and redirect path URLs there.
    #[arg(long)]
    pub subdomain_host: Option<String>,
    /// Block backend of a repo created at start (`sled` or `flatfs`); an existing repo keeps
    /// the backend it was created with.
    #[arg(long, env = "DISTRIBUTE_BLOCKSTORE", default_value = "sled",
          value_parser = |s: &str| s.parse::<crate::repo::BlockstoreKind>().map_err(|e| e.to_string()))]
    pub blockstore: crate::repo::BlockstoreKind,
}

#[derive(Debug, Subcommand)]
pub enum SwarmCommand {
    /// Connect to a peer by multiaddr.
    Connect {
        #[arg(required = true)]
        addr: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DhtCommand {
    /// Print the routing table's buckets.
    Inspect,
}

#[derive(Debug, Args)]
pub struct FindprovsArgs {
    pub cid: String,
    /// Also print how long each provider took to find.
    #[arg(short, long)]
    pub verbose: bool,
    /// Stop after this many providers.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub num_providers: usize,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Block storage backend, fixed for the life of the repository.
    #[arg(long, default_value = "sled")]
    pub blockstore: String,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Files or directories to add.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Add directory contents recursively.
    #[arg(short, long)]
    pub recursive: bool,
    /// Include files whose names start with a dot.
    #[arg(short = 'H', long)]
    pub hidden: bool,
    /// Print only the CIDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print only the final root CID.
    #[arg(short = 'Q', long)]
    pub quieter: bool,
    /// Import profile (unixfs-v0-2015 is Kubo's default).
    #[arg(long, default_value = "unixfs-v0-2015")]
    pub profile: Profile,
    /// CID version (1 implies --raw-leaves).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub cid_version: Option<u8>,
    /// Store leaves as raw blocks.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
    pub raw_leaves: Option<bool>,
    /// Chunking algorithm: size-<bytes> or buzhash.
    #[arg(short = 's', long)]
    pub chunker: Option<ChunkerSpec>,
    /// Use the trickle DAG layout instead of balanced.
    #[arg(short = 't', long)]
    pub trickle: bool,
    /// Pin what was added.
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
    pub pin: bool,
    /// Backend used if the repository does not exist yet.
    #[arg(long, default_value = "sled")]
    pub blockstore: String,
    /// Show a progress bar (default: when stderr is a terminal and the input is over 1 MB).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
    pub progress: Option<bool>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// CID or path (`<cid>/a/b`, `/ipfs/<cid>`, `ipfs://<cid>`).
    pub path: String,
    /// Where to write (default: the CID's name in the current folder).
    pub out: Option<PathBuf>,
    /// Same as the positional output argument.
    #[arg(short, long = "output", conflicts_with = "out")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    pub path: String,
    /// First byte to print.
    #[arg(short, long, default_value_t = 0)]
    pub offset: u64,
    /// Number of bytes to print (default: to the end).
    #[arg(short, long)]
    pub length: Option<u64>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    pub path: String,
}

#[derive(Debug, Args)]
pub struct PinArgs {
    #[command(subcommand)]
    pub command: Option<PinCommand>,
    /// CID to pin recursively (same as `pin add`).
    pub cid: Option<String>,
    #[command(flatten)]
    pub cluster: ReplicationArgs,
}

#[derive(Debug, Subcommand)]
pub enum PinCommand {
    /// Pin a DAG (it must be complete in the repository).
    Add {
        #[arg(required = true)]
        cids: Vec<String>,
        /// Pin the whole DAG (false: only the root block).
        #[arg(short, long, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
        recursive: bool,
        #[command(flatten)]
        cluster: ReplicationArgs,
    },
    /// Remove pins.
    Rm {
        #[arg(required = true)]
        cids: Vec<String>,
    },
    /// List pins.
    Ls {
        /// Which pins: all, recursive, direct or indirect.
        #[arg(short = 't', long = "type", default_value = "all")]
        kind: PinListKind,
        /// Print only CIDs.
        #[arg(short, long)]
        quiet: bool,
        /// List the cluster pinset instead: CID, status, holders/target, name.
        #[arg(long)]
        cluster: bool,
        /// Only these CIDs.
        cids: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PinListKind {
    All,
    Recursive,
    Direct,
    Indirect,
}

#[derive(Debug, Subcommand)]
pub enum DagCommand {
    /// Write the DAG under a CID as a CAR v1 file.
    Export {
        cid: String,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Import blocks from CAR files and pin their roots.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Pin the roots named in the CAR headers.
        #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
        pin_roots: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Print a block's raw bytes.
    Get { cid: String },
    /// Store a block from a file (or standard input) and print its CID.
    Put {
        file: Option<PathBuf>,
        /// Codec of the new CID: raw or dag-pb.
        #[arg(long, default_value = "raw")]
        cid_codec: String,
    },
    /// Print a block's CID and size.
    Stat { cid: String },
    /// Remove blocks.
    Rm {
        #[arg(required = true)]
        cids: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Remove every block not reachable from a pin.
    Gc {
        /// Print nothing.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print repository size and block count.
    Stat,
    /// Re-hash every block and check every pinned DAG is complete.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum CidCommand {
    /// Convert CIDs between versions and bases.
    Format {
        #[arg(required = true)]
        cids: Vec<String>,
        /// CID version to print.
        #[arg(short = 'v', long)]
        version: Option<u8>,
        /// Multibase: base58btc, base32, base36, base16, base64 ...
        #[arg(short = 'b', long)]
        base: Option<String>,
    },
}
