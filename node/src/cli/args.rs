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
