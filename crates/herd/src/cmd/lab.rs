//! `herd lab up|status|down`: a local lab of libvirt hypervisors (herd-lab).

use super::exit::{self, Exit};
use super::Global;
use herd_lab::{Lab, LabConfig, LabError, Problem};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "The lab runs one libvirtd per namespace on this machine (root only); \
see docs/lab.md. Point herd or virsh at a host with its URI, e.g.\n  \
export LIBVIRT_DEFAULT_URI='qemu+unix:///system?socket=/tmp/herd-lab/hv1/sock/libvirt-sock'"
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Start N libvirt hypervisors (hv1..hvN) and print their URIs.
    Up(UpArgs),
    /// Show the lab's hosts, their URIs and whether they run.
    Status(DirArgs),
    /// Stop every process of the lab and remove its files.
    Down(DirArgs),
}

#[derive(clap::Args, Debug)]
struct UpArgs {
    /// Number of hypervisors (1-16).
    #[arg(long, default_value_t = 2)]
    hosts: usize,
    /// Also serve every host through an sshd on 127.0.0.1 (qemu+ssh URIs).
    #[arg(long)]
    ssh: bool,
    #[command(flatten)]
    dir: DirArgs,
}

#[derive(clap::Args, Debug)]
struct DirArgs {
    /// Directory holding everything the lab writes.
    #[arg(long, env = "HERD_LAB_DIR", default_value = "/tmp/herd-lab")]
    dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(_global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Up(a) => up(a),
        Command::Status(a) => status(a),
        Command::Down(a) => down(a),
    }
}

fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    if !args.dir.json {
        eprintln!(
            "starting {} lab host(s) in {}...",
            args.hosts,
            args.dir.dir.display()
        );
    }
    let lab = Lab::up(LabConfig {
        hosts: args.hosts,
        dir: args.dir.dir.clone(),
        ssh: args.ssh,
    })
    .map_err(exit_for)?;
    let dir = lab.dir().to_path_buf();
    lab.detach();
    print_status(&dir, args.dir.json)?;
    if !args.dir.json {
        println!("\nstop it with: herd lab down --dir {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn status(args: DirArgs) -> anyhow::Result<ExitCode> {
    let all_running = print_status(&args.dir, args.json)?;
    Ok(if all_running {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILURE)
    })
}

fn down(args: DirArgs) -> anyhow::Result<ExitCode> {
    Lab::down_dir(&args.dir).map_err(exit_for)?;
    if args.json {
        println!("{}", serde_json::json!({"dir": args.dir, "down": true}));
    } else {
        println!("lab in {} stopped and removed", args.dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Print the lab in `dir`; whether every part of it runs.
fn print_status(dir: &std::path::Path, json: bool) -> anyhow::Result<bool> {
    let status = Lab::status(dir).map_err(exit_for)?;
    let all_running =
        status.hosts.iter().all(|h| h.running) && (status.ssh.is_none() || status.ssh_running);
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(all_running);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["HOST", "STATE", "HOST UUID", "URI"]);
    for h in &status.hosts {
        let state = if h.running { "running" } else { "stopped" };
        table.add_row([&h.host.name, state, &h.host.host_uuid, &h.host.uri]);
    }
    println!("{table}");
    if let Some(ssh) = &status.ssh {
        let state = if status.ssh_running {
            "running"
        } else {
            "stopped"
        };
        println!("\nsshd on 127.0.0.1:{} ({state}); ssh URIs:", ssh.port);
        for h in &status.hosts {
            if let Some(uri) = &h.host.ssh_uri {
                println!("  {}  {uri}", h.host.name);
            }
        }
    }
    Ok(all_running)
}

/// Map lab errors to herd's exit codes.
fn exit_for(err: LabError) -> anyhow::Error {
    let code = match &err {
        LabError::Preflight(problems)
            if problems
                .iter()
                .any(|p| matches!(p, Problem::NotRoot { .. })) =>
        {
            exit::REFUSED
        }
        LabError::AlreadyRunning(_) => exit::CONFLICT,
        LabError::NoLab(_) => exit::NOT_FOUND,
        LabError::BadDir { .. } | LabError::BadHostCount(_) => exit::USAGE,
        _ => exit::FAILURE,
    };
    Exit::new(code, err.to_string()).into()
}
