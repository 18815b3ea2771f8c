//! `herd fw`: router IP whitelisting. render, diff, plan and apply turn the
//! whitelist policy (from the inventory, or a policy file) into the router's
//! UCI config; nft prints the ruleset fw4 would load; check evaluates one
//! packet against it. Every decision is in `herd-firewall`.

use super::exit::{Exit, FAILURE, NOT_FOUND, USAGE};
use super::Global;
use herd_firewall::apply::{self, SshTarget};
use herd_firewall::check::{self, Query};
use herd_firewall::fw4;
use herd_firewall::inventory::{self, objects_from_json, policy_from_objects};
use herd_firewall::nft::FinalVerdict;
use herd_firewall::policy::{self, Policy, Rendered};
use herd_uci::{commit_text, export_with, parse_str, ExportOptions, Package};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Router IP whitelisting: render, diff, plan, apply, nft, check.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: FwCommand,
}

/// Where the policy and the router's current config come from.
#[derive(clap::Args, Debug, Clone)]
pub struct Source {
    /// The router's hostname in the inventory.
    pub router: String,
    /// Read router and zone objects from this JSON file (the output of
    /// `herd query ... --json`) instead of the inventory.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// The router's /etc/config as files (network, firewall); without it,
    /// a baseline built from the router's attributes.
    #[arg(long)]
    pub current: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum FwCommand {
    /// Print the network and firewall sections herd manages for ROUTER.
    Render {
        #[command(flatten)]
        source: Source,
        /// Write the complete network and firewall files into DIR.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Print the sections as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The semantic diff between the router's config and the rendered one.
    Diff {
        #[command(flatten)]
        source: Source,
    },
    /// The `uci batch` script that makes the router's config the rendered one.
    Plan {
        #[command(flatten)]
        source: Source,
    },
    /// Run the plan on the router over SSH: uci batch, uci commit, reload;
    /// uci revert if anything fails before the commit.
    Apply {
        /// The router's hostname in the inventory.
        router: String,
        #[arg(long)]
        policy: Option<PathBuf>,
        /// SSH host (default: the router's intern_ip, else its hostname).
        #[arg(long)]
        host: Option<String>,
        #[arg(long, default_value = "root")]
        ssh_user: String,
        #[arg(long)]
        ssh_port: Option<u16>,
        #[arg(long)]
        ssh_key: Option<PathBuf>,
        /// Extra ssh -o options.
        #[arg(long = "ssh-option")]
        ssh_options: Vec<String>,
        /// The uci command on the router.
        #[arg(long, default_value = "uci")]
        remote_uci: String,
        /// What reloads the router's network and firewall after the commit.
        #[arg(
            long,
            default_value = "/etc/init.d/network reload && /etc/init.d/firewall reload"
        )]
        reload: String,
        /// Show the diff and the script, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the nftables ruleset fw4 would load for a config directory.
    Nft {
        /// Directory holding `firewall` (and `network`).
        #[arg(long)]
        config: PathBuf,
    },
    /// The verdict for one packet and the rule or policy that decided it
    /// (exit 0 when accepted, 1 when rejected or dropped).
    Check {
        /// The router (its policy rendered onto --current or its baseline).
        router: Option<String>,
        #[arg(long)]
        policy: Option<PathBuf>,
        #[arg(long)]
        current: Option<PathBuf>,
        /// Check this config directory (network, firewall) as it is.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        src: IpAddr,
        #[arg(long)]
        dst: IpAddr,
        /// tcp, udp or icmp.
        #[arg(long, default_value = "tcp")]
        proto: String,
        #[arg(long)]
        dport: Option<u16>,
        #[arg(long, default_value = "wan")]
        wan_zone: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        FwCommand::Render {
            source,
            output,
            json,
        } => render(global, &source, output.as_deref(), json),
        FwCommand::Diff { source } => {
            let (current, out) = rendered(global, &source)?;
            print_notes(&out);
            print!("{}", diff_of(&current, &out));
            Ok(ExitCode::SUCCESS)
        }
        FwCommand::Plan { source } => {
            let (current, out) = rendered(global, &source)?;
            print_notes(&out);
            print!("{}", script_of(&current, &out)?);
            Ok(ExitCode::SUCCESS)
        }
        FwCommand::Apply {
            router,
            policy,
            host,
            ssh_user,
            ssh_port,
            ssh_key,
            ssh_options,
            remote_uci,
            reload,
            dry_run,
        } => {
            let p = load_policy(global, &router, policy.as_deref())?;
            let target = SshTarget {
                host: host
                    .or_else(|| p.router.address.clone())
                    .unwrap_or_else(|| router.clone()),
                user: ssh_user,
                port: ssh_port,
                identity: ssh_key,
                options: ssh_options,
                uci: remote_uci,
                reload,
            };
            eprintln!("reading network and firewall from {}", target.host);
            let network = target.fetch("network")?;
            let firewall = target.fetch("firewall")?;
            let out = render_policy(&p, &network, &firewall)?;
            print_notes(&out);
            let current = (network, firewall);
            print!("{}", diff_of(&current, &out));
            let script = script_of(&current, &out)?;
            if dry_run {
                println!("# uci batch script (dry run, nothing changed):");
                print!("{script}");
                return Ok(ExitCode::SUCCESS);
            }
            match apply::apply_script(&target, &script)? {
                apply::Outcome::NothingToDo => eprintln!("{} is up to date", target.host),
                apply::Outcome::Applied => {
                    eprintln!("applied, committed and reloaded on {}", target.host)
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        FwCommand::Nft { config } => {
            let (network, firewall) = read_dir_packages(&config)?;
            let env = fw4::Environment::from_network_package(&policy::to_fw_package(&network));
            let (fw, ruleset) = fw4::render(&policy::to_fw_package(&firewall), &env);
            for w in &fw.warnings {
                eprintln!("[!] {w}");
            }
            print!("{}", ruleset.render());
            Ok(ExitCode::SUCCESS)
        }
        FwCommand::Check {
            router,
            policy,
            current,
            config,
            src,
            dst,
            proto,
            dport,
            wan_zone,
            json,
        } => {
            let (network, firewall, wan_zone) = match (config, router) {
                (Some(dir), _) => {
                    let (n, f) = read_dir_packages(&dir)?;
                    (n, f, wan_zone)
                }
                (None, Some(router)) => {
                    let source = Source {
                        router,
                        policy,
                        current,
                    };
                    let p = load_policy(global, &source.router, source.policy.as_deref())?;
                    let (_, out) = rendered_with(&p, &source)?;
                    (out.network, out.firewall, p.router.wan_zone.clone())
                }
                (None, None) => {
                    return Err(Exit::new(USAGE, "give a ROUTER or --config DIR").into())
                }
            };
            let q = Query {
                src,
                dst,
                proto,
                dport,
                wan_zone,
            };
            let v = check::check(
                &policy::to_fw_package(&network),
                &policy::to_fw_package(&firewall),
                &q,
            )
            .map_err(|e| Exit::new(USAGE, e.to_string()))?;
            let verdict = v.decision.verdict;
            if json {
                let out = serde_json::json!({
                    "verdict": verdict.as_str(),
                    "reason": v.decision.reason(),
                    "hook": format!("{:?}", v.hook).to_lowercase(),
                    "iif": v.iif,
                    "oif": v.oif,
                    "trace": v.decision.trace.iter().map(|s| serde_json::json!({"chain": s.chain, "rule": s.rule})).collect::<Vec<_>>(),
                    "unevaluated": v.decision.unevaluated,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "{}: {}",
                    verdict.as_str().to_uppercase(),
                    v.decision.reason()
                );
                for s in &v.decision.trace {
                    println!("  {}: {}", s.chain, s.rule);
                }
                for u in &v.decision.unevaluated {
                    println!("  (not evaluated, treated as no match: {u})");
                }
            }
            // scripts: 0 accept, 1 reject/drop
            Ok(match verdict {
                FinalVerdict::Accept => ExitCode::SUCCESS,
                _ => ExitCode::from(FAILURE),
            })
        }
    }
}

fn print_notes(out: &Rendered) {
    for n in &out.notes {
        eprintln!("note: {n}");
    }
}

fn load_policy(global: &Global, router: &str, file: Option<&Path>) -> anyhow::Result<Policy> {
    let objects = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Exit::new(USAGE, format!("{}: {e}", path.display())))?;
            objects_from_json(&text)
                .map_err(|e| Exit::new(USAGE, format!("{}: {e}", path.display())))?
        }
        None => {
            let client = super::inventory::client(global)?;
            let mut objects = Vec::new();
            for q in [
                format!(
                    "hostname={router} servertype={}",
                    inventory::ROUTER_SERVERTYPE
                ),
                format!(
                    "servertype={} openwrt_router={router}",
                    inventory::ZONE_SERVERTYPE
                ),
            ] {
                for o in client
                    .query_text(&q)
                    .map_err(super::inventory::client_error)?
                {
                    if let serde_json::Value::Object(m) = serde_json::to_value(o.object())? {
                        objects.push(m);
                    }
                }
            }
            objects
        }
    };
    policy_from_objects(router, &objects).map_err(|errors| {
        let code = if errors
            .iter()
            .any(|e| matches!(e, policy::PolicyError::NoRouter(_)))
        {
            NOT_FOUND
        } else {
            USAGE
        };
        let text: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        Exit::new(
            code,
            format!(
                "the whitelist policy of {router} is invalid:\n{}",
                text.join("\n")
            ),
        )
        .into()
    })
}

fn render_policy(p: &Policy, network: &Package, firewall: &Package) -> anyhow::Result<Rendered> {
    policy::render(p, network, firewall).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        Exit::new(USAGE, format!("cannot render:\n{}", text.join("\n"))).into()
    })
}

fn read_dir_packages(dir: &Path) -> anyhow::Result<(Package, Package)> {
    let read = |name: &str| -> anyhow::Result<Package> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_str(&text, name)
                .map_err(|e| Exit::new(USAGE, format!("{}: {e}", path.display())).into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Package::new(name)),
            Err(e) => Err(Exit::new(USAGE, format!("{}: {e}", path.display())).into()),
        }
    };
    Ok((read("network")?, read("firewall")?))
}

fn rendered_with(p: &Policy, source: &Source) -> anyhow::Result<((Package, Package), Rendered)> {
    let (network, firewall) = match &source.current {
        Some(dir) => read_dir_packages(dir)?,
        None => policy::baseline(&p.router),
    };
    let out = render_policy(p, &network, &firewall)?;
    Ok(((network, firewall), out))
}

fn rendered(global: &Global, source: &Source) -> anyhow::Result<((Package, Package), Rendered)> {
    let p = load_policy(global, &source.router, source.policy.as_deref())?;
    rendered_with(&p, source)
}

fn render(
    global: &Global,
    source: &Source,
    output: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let ((network, firewall), out) = rendered(global, source)?;
    print_notes(&out);
    if let Some(dir) = output {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("network"), commit_text(&out.network))?;
        std::fs::write(dir.join("firewall"), commit_text(&out.firewall))?;
    }
    let mut pieces = Vec::new();
    for (before, after) in [(&network, &out.network), (&firewall, &out.firewall)] {
        let mut managed = Package::new(after.name.clone());
        managed.sections = policy::managed_sections(before, after)
            .into_iter()
            .cloned()
            .collect();
        pieces.push(managed);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&pieces)?);
    } else {
        for p in &pieces {
            println!("# /etc/config/{}", p.name);
            print!("{}", export_with(p, ExportOptions::default()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// herd-uci's semantic diff of both packages (empty when nothing changes).
fn diff_of(current: &(Package, Package), out: &Rendered) -> String {
    let mut text = herd_uci::diff::render(&herd_uci::diff::diff(&current.0, &out.network));
    text.push_str(&herd_uci::diff::render(&herd_uci::diff::diff(
        &current.1,
        &out.firewall,
    )));
    text
}

/// herd-uci's `uci batch` script for both packages (without `commit`).
fn script_of(current: &(Package, Package), out: &Rendered) -> anyhow::Result<String> {
    let mut script = herd_uci::batch_script(&current.0, &out.network)
        .map_err(|e| Exit::new(FAILURE, format!("cannot plan the network changes: {e}")))?;
    script.push_str(
        &herd_uci::batch_script(&current.1, &out.firewall)
            .map_err(|e| Exit::new(FAILURE, format!("cannot plan the firewall changes: {e}")))?,
    );
    Ok(script)
}
