//! `herd`: the command line. Each subcommand is a few lines over a library
//! call in one of the workspace crates; this file only parses arguments and
//! maps the outcome to an exit code (see `cmd::exit`).

mod cmd;
mod config;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Run a fleet of KVM hypervisors and the network around them.
#[derive(Parser)]
#[command(name = "herd", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: cmd::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the inventory HTTP API server.
    Serve(cmd::serve::Args),
    /// Query the inventory (serveradmin's query language).
    Query(cmd::inventory::QueryArgs),
    /// Change attributes of one object: `herd set HOST attr=value ...`.
    Set(cmd::inventory::SetArgs),
    /// Create objects (one from arguments, or many from a .jsonl file).
    Create(cmd::inventory::CreateArgs),
    /// Delete objects matching a query.
    Delete(cmd::inventory::DeleteArgs),
    /// Show and change servertypes and attributes.
    Schema(cmd::inventory::SchemaArgs),
    /// Show the change history of an object or a commit.
    History(cmd::inventory::HistoryArgs),
    /// Manage API users.
    User(cmd::users::UserArgs),
    /// Manage users' SSH public keys.
    Key(cmd::users::KeyArgs),
    /// Manage API tokens.
    Token(cmd::users::TokenArgs),
    /// Move an installation between database engines.
    Db(cmd::db::Args),
    /// A local lab of libvirt hypervisors on this machine.
    Lab(cmd::lab::Args),
    /// Hypervisors: bootstrap, report, evacuate.
    Hv(cmd::hv::Args),
    /// Virtual machines: create, start, stop, delete, migrate.
    Vm(cmd::vm::Args),
    /// Router IP whitelisting: render, diff, plan, apply, nft, check.
    Fw(cmd::fw::Args),
    /// OpenWrt UCI files: fmt, export, show, diff, batch.
    Uci(cmd::uci::Args),
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc; // docs/bench/store.md (model)

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => cmd::serve::run(&cli.global, a),
        Command::Query(a) => cmd::inventory::query(&cli.global, a),
        Command::Set(a) => cmd::inventory::set(&cli.global, a),
        Command::Create(a) => cmd::inventory::create(&cli.global, a),
        Command::Delete(a) => cmd::inventory::delete(&cli.global, a),
        Command::Schema(a) => cmd::inventory::schema(&cli.global, a),
        Command::History(a) => cmd::inventory::history(&cli.global, a),
        Command::User(a) => cmd::users::user(&cli.global, a),
        Command::Key(a) => cmd::users::key(&cli.global, a),
        Command::Token(a) => cmd::users::token(&cli.global, a),
        Command::Db(a) => cmd::db::run(&cli.global, a),
        Command::Lab(a) => cmd::lab::run(&cli.global, a),
        Command::Hv(a) => cmd::hv::run(&cli.global, a),
        Command::Vm(a) => cmd::vm::run(&cli.global, a),
        Command::Fw(a) => cmd::fw::run(&cli.global, a),
        Command::Uci(a) => cmd::uci::run(&cli.global, a),
    };
    cmd::exit::report(result)
}
