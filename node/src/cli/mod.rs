//! The `distribute` command line: parses arguments ([`args`]), sets up logging, opens the
//! repository and runs one command. When a running daemon holds the repository, the command
//! runs through the daemon's HTTP RPC API instead ([`remote`], found through `<repo>/api`),
//! printing exactly what it prints offline. Errors end here: one line on stderr naming the
//! problem, exit code 1.

mod add;
pub mod args;
mod block;
mod cidfmt;
mod cluster;
mod dag;
mod net;
mod nft;
pub mod output;
mod pin;
mod read;
pub mod remote;
mod repo;
mod upload;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use args::{Cli, Command, GlobalArgs, LogFormat};
use output::{Ctx, open_repo_with, stdout};

use crate::repo::{BlockstoreKind, Repo};
use remote::Remote;

/// Where a command runs: on the repository this process opened, or in the daemon that
/// holds it, through its RPC API.
pub enum Backend<'a> {
    Local(&'a Repo),
    Remote(&'a Remote),
}

/// Run the CLI with the process arguments and return its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli.global);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", format_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line, without repeating a cause already quoted.
pub(crate) fn format_chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn init_logging(global: &GlobalArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match global.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn run(cli: Cli) -> Result<()> {
    let global = &cli.global;
    let kind = match &cli.command {
        Command::Init(a) => return repo::init(global, a),
        Command::Cid(c) => return cidfmt::run(c, &mut stdout()),
        Command::Node(a) => return crate::daemon::run(global, a),
        Command::Gateway(a) => return crate::daemon::run(global, &a.node_args()),
        Command::Add(a) => a.blockstore.parse()?,
        _ => BlockstoreKind::Sled,
    };
    if let Command::Add(a) = &cli.command {
        // Check every input before the repository is even created.
        add::check_inputs(a, &std::env::current_dir()?)?;
    }
    let repo = match open_repo_with(global, kind) {
        Ok(repo) => repo,
        Err(e) => return run_online(global, cli.command, e),
    };
    tracing::debug!(repo = %repo.path().display(), "repository opened");
    let backend = Backend::Local(&repo);
    let mut out = stdout();
    match cli.command {
        Command::Id => net::id(&backend, &mut out)?,
        Command::Pin(a) => pin::run(&backend, &mut out, a)?,
        command => {
            let source = repo.source();
            let mut ctx = Ctx {
                repo: &repo,
                source: &source,
                out: &mut out,
                cwd: std::env::current_dir()?,
                interactive: std::io::stderr().is_terminal(),
            };
            execute(&mut ctx, command)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The repository could not be opened: when a running daemon holds it and serves the RPC
/// API (`<repo>/api`), run the command there; otherwise report `open_error`.
fn run_online(global: &GlobalArgs, command: Command, open_error: anyhow::Error) -> Result<()> {
    let locked = matches!(
        open_error.downcast_ref::<crate::repo::RepoError>(),
        Some(crate::repo::RepoError::Locked { .. })
    );
    let path = output::repo_path(global)?;
    let remote = match Remote::discover(&path, global)? {
        Some(remote) if locked => remote,
        _ => return Err(open_error),
    };
    let backend = Backend::Remote(&remote);
    let cwd = std::env::current_dir()?;
    let interactive = std::io::stderr().is_terminal();
    let mut out = stdout();
    match command {
        Command::Id => net::id(&backend, &mut out)?,
        Command::Pin(a) => pin::run(&backend, &mut out, a)?,
        Command::Add(a) => add::remote(&remote, &a, &cwd, interactive, &mut out)?,
        Command::Get(a) => read::get_remote(&remote, &a, &cwd, interactive)?,
        Command::Cat(a) => read::cat_remote(&remote, &a, &mut out)?,
        Command::Ls(a) => read::ls_remote(&remote, &a, &mut out)?,
        Command::Dag(c) => dag::remote(&remote, c, &cwd, &mut out)?,
        Command::Block(c) => block::remote(&remote, c, &cwd, &mut out)?,
        Command::Repo(c) => repo::remote(&remote, c, &mut out)?,
        Command::Nft(c) => nft::remote(&remote, c, &cwd, &mut out)?,
        Command::Peers => net::peers(&remote, &mut out)?,
        Command::Swarm(c) => net::swarm(&remote, c, &mut out)?,
        Command::Dht(c) => net::dht(&remote, c, &mut out)?,
        Command::Findprovs(a) => net::findprovs(&remote, &a, &mut out)?,
        Command::Cluster(c) => cluster::run(&remote, c, &mut out)?,
        Command::Status(a) => cluster::status(&remote, &a, &mut out)?,
        Command::Cid(c) => cidfmt::run(&c, &mut out)?,
        Command::Init(_) => anyhow::bail!("the repository exists and a running daemon holds it"),
        Command::Node(_) | Command::Gateway(_) => {
            anyhow::bail!("a daemon is already running on this repository")
        }
    }
    out.flush()?;
    Ok(())
}

/// Run one repository command in `ctx`.
pub fn execute(ctx: &mut Ctx<'_>, command: Command) -> Result<()> {
    match command {
        Command::Add(a) => add::run(ctx, &a),
        Command::Get(a) => read::get(ctx, &a),
        Command::Cat(a) => read::cat(ctx, &a),
        Command::Ls(a) => read::ls(ctx, &a),
        Command::Pin(a) => pin::run(&Backend::Local(ctx.repo), ctx.out, a),
        Command::Dag(c) => dag::run(ctx, c),
        Command::Block(c) => block::run(ctx, c),
        Command::Repo(c) => repo::run(ctx, c),
        Command::Cid(c) => cidfmt::run(&c, ctx.out),
        Command::Nft(c) => nft::run(ctx, c),
        Command::Init(_) => anyhow::bail!("init does not run against an open repository"),
        Command::Node(_) | Command::Gateway(_) => {
            anyhow::bail!("the node runs on its own, not against an open repository")
        }
        Command::Id => net::id(&Backend::Local(ctx.repo), ctx.out),
        Command::Peers
        | Command::Swarm(_)
        | Command::Dht(_)
        | Command::Findprovs(_)
        | Command::Cluster(_)
        | Command::Status(_) => {
            anyhow::bail!("this command needs the running node; start it with `distribute node`")
        }
    }
}
