//! `herd query|set|create|delete|schema|history`: the inventory from the
//! command line, over `herd-client`. Tables for people, `--json` for
//! scripts; exit codes from `cmd::exit` (conflict 3, not found 4, refused 5,
//! bad input 2).

use super::exit::{self, Exit};
use super::Global;
use crate::config::Config;
use anyhow::Context;
use comfy_table::{presets, Table};
use herd_client::edit::{apply_assignments, objects_from_jsonl, Assignment, JsonlError};
use herd_client::{
    commit_of, parse_query, Client, ClientError, Commit, HistoryQuery, Object, Query, Restrict,
    SchemaChange, TrackedObject, Value,
};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// The client for the server the global options and the config file name.
/// Other command modules use it too.
/// Requests are signed with `HERD_TOKEN` if set, else the key file of
/// `--key`/`HERD_KEY`/`key` in the config file, else the keys in ssh-agent;
/// unsigned when none is available.
pub fn client(global: &Global) -> anyhow::Result<Client> {
    let config = Config::load(global)?;
    let url = config.server_url(global);
    let client = Client::new(&url).map_err(|e| Exit::new(exit::USAGE, e.to_string()))?;
    let refused =
        |e: herd_auth::SignError| Exit::new(exit::REFUSED, format!("cannot sign requests: {e}"));
    let signer: Option<Box<dyn herd_auth::Signer>> =
        if let Some(token) = herd_auth::TokenSigner::from_env() {
            Some(Box::new(token.map_err(refused)?))
        } else if let Some(path) = config.key_file(global) {
            Some(Box::new(
                herd_auth::KeyFileSigner::load_interactive(&path).map_err(refused)?,
            ))
        } else {
            let notes: herd_auth::signer::Notes = Box::new(|note| eprintln!("note: {note}"));
            match herd_auth::AgentSigner::from_env(notes) {
                Ok(agent) => Some(Box::new(agent)),
                Err(herd_auth::SignError::NoAgent) => None,
                Err(e) => return Err(refused(e).into()),
            }
        };
    Ok(match signer {
        Some(signer) => client.with_signer(signer),
        None => client,
    })
}

/// Map a client error to the exit code scripts rely on.
pub fn client_error(err: ClientError) -> anyhow::Error {
    let code = match &err {
        ClientError::Conflict { .. } => exit::CONFLICT,
        ClientError::NotFound { .. } => exit::NOT_FOUND,
        ClientError::Refused { .. } | ClientError::Sign(_) => exit::REFUSED,
        ClientError::Invalid { .. } | ClientError::Query(_) | ClientError::BadUrl(_) => exit::USAGE,
        ClientError::Unreachable { .. } | ClientError::Server { .. } => exit::FAILURE,
    };
    Exit::new(code, err.to_string()).into()
}

// ---------------------------------------------------------------- query

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  herd query 'servertype=vm hypervisor=hv1' -a hostname -a memory
  herd query 'web.*' -a intern_ip -a hypervisor.hostname --order-by hostname
  herd query 'memory=GreaterThan(4096) os=Not(Empty())' --json")]
pub struct QueryArgs {
    /// Query in serveradmin's text syntax: `attr=value ...`, functions like
    /// `GreaterThan(4)`, `Any(a b)`, `Regexp(^web)`; a leading bare word is a
    /// hostname (a regexp if it has regex characters).
    pub query: String,
    /// Attribute to show (repeat). `relation.attr` shows an attribute of the
    /// related object. Default: hostname (table), every attribute (--json).
    #[arg(short = 'a', long = "attr", value_name = "ATTR")]
    pub attrs: Vec<String>,
    /// Sort by this attribute (repeat for ties); object_id breaks ties.
    #[arg(long, value_name = "ATTR")]
    pub order_by: Vec<String>,
    /// Print the objects as a JSON array.
    #[arg(long)]
    pub json: bool,
}

pub fn query(global: &Global, args: QueryArgs) -> anyhow::Result<ExitCode> {
    let mut query = parse_query(&args.query).map_err(client_error)?;
    let columns = if args.attrs.is_empty() && !args.json {
        vec!["hostname".to_string()]
    } else {
        args.attrs.clone()
    };
    query.restrict = (!columns.is_empty()).then(|| restrict_of(&columns));
    query.order_by = args.order_by;
    let objects = client(global)?.query(&query).map_err(client_error)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let objects: Vec<&Object> = objects.iter().map(|o| o.object()).collect();
        serde_json::to_writer_pretty(&mut out, &objects)?;
        writeln!(out)?;
    } else {
        let rows = objects
            .iter()
            .map(|o| columns.iter().map(|c| cell(o.object(), c)).collect())
            .collect();
        writeln!(out, "{}", table(&columns, rows))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `["hostname", "hypervisor.num_cpu", "hypervisor.hostname"]` →
/// `["hostname", {"hypervisor": ["num_cpu", "hostname"]}]`.
fn restrict_of(paths: &[String]) -> Vec<Restrict> {
    let mut out: Vec<Restrict> = Vec::new();
    for path in paths {
        insert_path(&mut out, path);
    }
    out
}

fn insert_path(list: &mut Vec<Restrict>, path: &str) {
    match path.split_once('.') {
        None => {
            if !list.iter().any(|r| r.attribute_id() == path) {
                list.push(Restrict::Attribute(path.to_string()));
            }
        }
        Some((head, rest)) => {
            let existing = list.iter_mut().find_map(|r| match r {
                Restrict::Related {
                    attribute,
                    restrict,
                } if attribute == head => Some(restrict),
                _ => None,
            });
            match existing {
                Some(inner) => insert_path(inner, rest),
                None => {
                    // A plain entry for the same relation would return its
                    // hostname only; the joined one replaces it.
                    list.retain(|r| r.attribute_id() != head);
                    let mut inner = Vec::new();
                    insert_path(&mut inner, rest);
                    list.push(Restrict::Related {
                        attribute: head.to_string(),
                        restrict: inner,
                    });
                }
            }
        }
    }
}

/// The text of `path` (`attr` or `relation.attr`) in `object`.
fn cell(object: &Object, path: &str) -> String {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    match (object.get(head), rest) {
        (Some(Value::Object(inner)), Some(rest)) => cell(inner, rest),
        (Some(value), None) => value.to_text(),
        _ => String::new(),
    }
}

fn table(header: &[String], rows: Vec<Vec<String>>) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_HORIZONTAL_ONLY)
        .remove_style(comfy_table::TableComponent::HorizontalLines);
    table.set_header(header);
    for row in rows {
        table.add_row(row);
    }
    table
}

// ------------------------------------------------------------------ set

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  herd set vm1 memory=4096 os=bookworm
  herd set vm1 tags+=ha tags-=legacy      # add and remove values of a multi attribute
  herd set vm1 responsible_admin=anna,ben # replace a multi attribute's values
  herd set vm1 comment=                   # clear a value

The values read are sent as the expected old values: if someone changed them
meanwhile, nothing is changed and herd exits with 3 (conflict).")]
pub struct SetArgs {
    /// Hostname of the object to change.
    pub hostname: String,
    /// `attr=value`, `attr+=value` or `attr-=value` (multi attributes).
    #[arg(required = true, value_name = "ATTR=VALUE")]
    pub assignments: Vec<String>,
    /// Show the changes without committing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn set(global: &Global, args: SetArgs) -> anyhow::Result<ExitCode> {
    let assignments = args
        .assignments
        .iter()
        .map(|a| a.parse::<Assignment>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Exit::new(exit::USAGE, e))?;
    let client = client(global)?;
    let schema = client.schema().map_err(client_error)?;
    let mut object = client.get(&args.hostname).map_err(client_error)?;
    apply_assignments(&schema, &mut object, &assignments)
        .map_err(|e| Exit::new(exit::USAGE, format!("{}: {e}", args.hostname)))?;
    let commit = commit_of([&object]);
    finish_commit(
        &client,
        commit,
        &names_of([&object]),
        args.dry_run,
        args.json,
    )
}

/// object_id → hostname, to describe commits in words.
fn names_of<'a>(objects: impl IntoIterator<Item = &'a TrackedObject>) -> BTreeMap<i64, String> {
    objects
        .into_iter()
        .filter_map(|o| Some((o.object_id()?, o.hostname()?.to_string())))
        .collect()
}

/// Show or send a commit, and report it.
fn finish_commit(
    client: &Client,
    commit: Commit,
    names: &BTreeMap<i64, String>,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if commit.is_empty() {
        if json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"commit_id": null, "changes": 0})
            )?;
        } else {
            writeln!(out, "nothing to change")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if dry_run {
        if json {
            serde_json::to_writer_pretty(&mut out, &commit)?;
            writeln!(out)?;
        } else {
            writeln!(out, "would commit (dry run):")?;
            describe_commit(&mut out, &commit, names)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let commit_id = client.commit(&commit).map_err(client_error)?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"commit_id": commit_id, "changes": commit.len()})
        )?;
    } else {
        describe_commit(&mut out, &commit, names)?;
        writeln!(out, "commit {commit_id}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_commit(
    out: &mut impl Write,
    commit: &Commit,
    names: &BTreeMap<i64, String>,
) -> std::io::Result<()> {
    let name = |id: &i64| names.get(id).cloned().unwrap_or_else(|| format!("#{id}"));
    for object in &commit.created {
        writeln!(
            out,
            "  create {} ({})",
            object.hostname().unwrap_or("?"),
            object.servertype().unwrap_or("?")
        )?;
    }
    for change in &commit.changed {
        for (attr, c) in &change.attributes {
            let text = match c {
                herd_client::AttributeChange::Update { old, new } => {
                    format!("{} -> {}", shown(old), shown(new))
                }
                herd_client::AttributeChange::New { new } => format!("-> {}", shown(new)),
                herd_client::AttributeChange::Delete { old } => {
                    format!("{} -> null", shown(old))
                }
                herd_client::AttributeChange::Multi { add, remove } => {
                    let mut parts = Vec::new();
                    parts.extend(add.iter().map(|v| format!("+{}", v.to_text())));
                    parts.extend(remove.iter().map(|v| format!("-{}", v.to_text())));
                    parts.join(" ")
                }
            };
            writeln!(out, "  {} {attr}: {text}", name(&change.object_id))?;
        }
    }
    for id in &commit.deleted {
        writeln!(out, "  delete {}", name(id))?;
    }
    Ok(())
}

/// A value for people: strings quoted, null as null, others as text.
fn shown(value: &Value) -> String {
    match value {
        Value::String(_) | Value::Null => value.describe(),
        other => other.to_text(),
    }
}

// --------------------------------------------------------------- create

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  herd create vm vm1 intern_ip=10.0.0.5 hypervisor=hv1 memory=2048
  herd create --file vms.jsonl --batch 1000

A .jsonl file holds one object per line, as serveradmin's commit takes them:
{\"hostname\": \"vm1\", \"servertype\": \"vm\", \"intern_ip\": \"10.0.0.5\", ...}
Every line is checked before anything is sent; each batch is one commit
(all of it or nothing).")]
pub struct CreateArgs {
    /// Servertype of the new object.
    #[arg(required_unless_present = "file")]
    pub servertype: Option<String>,
    /// Hostname of the new object.
    #[arg(required_unless_present = "file")]
    pub hostname: Option<String>,
    /// `attr=value` settings (multi attributes: `attr=a,b`).
    #[arg(value_name = "ATTR=VALUE")]
    pub assignments: Vec<String>,
    /// Create the objects of this .jsonl file instead (`-` for stdin).
    #[arg(long, short = 'f', conflicts_with_all = ["servertype", "hostname", "assignments"])]
    pub file: Option<PathBuf>,
    /// Objects per commit when creating from a file.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Check and show without committing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn create(global: &Global, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let client = client(global)?;
    if let Some(path) = &args.file {
        return create_from_file(&client, path, &args);
    }
    let (Some(servertype), Some(hostname)) = (&args.servertype, &args.hostname) else {
        return Err(Exit::new(exit::USAGE, "give SERVERTYPE and HOSTNAME, or --file").into());
    };
    let assignments = args
        .assignments
        .iter()
        .map(|a| a.parse::<Assignment>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Exit::new(exit::USAGE, e))?;
    let schema = client.schema().map_err(client_error)?;
    let mut object = client.new_object(servertype).map_err(client_error)?;
    object.set("hostname", hostname.as_str());
    apply_assignments(&schema, &mut object, &assignments)
        .map_err(|e| Exit::new(exit::USAGE, format!("{hostname}: {e}")))?;
    finish_commit(
        &client,
        commit_of([&object]),
        &BTreeMap::new(),
        args.dry_run,
        args.json,
    )
}

/// Every object of a .jsonl file, or all its bad lines as a usage error.
fn read_jsonl(reader: impl BufRead, name: &str) -> anyhow::Result<Vec<Object>> {
    objects_from_jsonl(reader, name).map_err(|e| match e {
        JsonlError::Read(_) => anyhow::Error::new(e),
        JsonlError::BadLines(_) => Exit::new(exit::USAGE, e.to_string()).into(),
    })
}

fn create_from_file(
    client: &Client,
    path: &PathBuf,
    args: &CreateArgs,
) -> anyhow::Result<ExitCode> {
    let name = path.display().to_string();
    let objects = if name == "-" {
        read_jsonl(std::io::stdin().lock(), "stdin")?
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| Exit::new(exit::USAGE, format!("cannot open {name}: {e}")))?;
        read_jsonl(std::io::BufReader::new(file), &name)?
    };
    let total = objects.len();
    if args.dry_run {
        println!("{total} objects in {name} parse; nothing was sent (dry run)");
        return Ok(ExitCode::SUCCESS);
    }
    let progress = indicatif::ProgressBar::new(total as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} objects {per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut commits = Vec::new();
    let mut done = 0usize;
    for batch in objects.chunks(args.batch as usize) {
        let commit = Commit {
            created: batch.to_vec(),
            ..Commit::default()
        };
        match client.commit(&commit) {
            Ok(id) => commits.push(id),
            Err(err) => {
                progress.abandon();
                let first = batch.first().and_then(|o| o.hostname()).unwrap_or("?");
                return Err(client_error(err)).with_context(|| {
                    format!(
                        "the batch starting at {first} (objects {}..{} of {total}) was refused; \
                         the {done} objects before it were created",
                        done + 1,
                        done + batch.len()
                    )
                });
            }
        }
        done += batch.len();
        progress.set_position(done as u64);
    }
    progress.finish_and_clear();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"created": total, "commit_ids": commits})
        );
    } else {
        println!("created {total} objects in {} commits", commits.len());
    }
    Ok(ExitCode::SUCCESS)
}

// --------------------------------------------------------------- delete

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  herd delete vm1
  herd delete 'servertype=vm project=test' --dry-run
  herd delete 'servertype=vm project=test' --yes")]
pub struct DeleteArgs {
    /// Query of the objects to delete (a hostname is a query).
    pub query: String,
    /// Show what would be deleted without deleting.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete even when the query matches more than one object.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn delete(global: &Global, args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let query: Query = parse_query(&args.query).map_err(client_error)?.restrict(&[
        "object_id",
        "hostname",
        "servertype",
    ]);
    let client = client(global)?;
    let objects = client.query(&query).map_err(client_error)?;
    if objects.is_empty() {
        return Err(Exit::new(
            exit::NOT_FOUND,
            format!("no object matches {:?}; nothing deleted", args.query),
        )
        .into());
    }
    if objects.len() > 1 && !args.yes && !args.dry_run {
        let names: Vec<&str> = objects
            .iter()
            .filter_map(|o| o.hostname())
            .take(10)
            .collect();
        return Err(Exit::new(
            exit::USAGE,
            format!(
                "{} objects match ({}{}); add --yes to delete them all, or --dry-run to list them",
                objects.len(),
                names.join(", "),
                if objects.len() > 10 { ", ..." } else { "" }
            ),
        )
        .into());
    }
    let commit = Commit {
        deleted: objects.iter().filter_map(|o| o.object_id()).collect(),
        ..Commit::default()
    };
    if args.dry_run && !args.json {
        println!("would delete (dry run):");
        for o in &objects {
            println!(
                "  {} ({}, #{})",
                o.hostname().unwrap_or("?"),
                o.servertype().unwrap_or("?"),
                o.object_id().unwrap_or_default()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    finish_commit(
        &client,
        commit,
        &names_of(&objects),
        args.dry_run,
        args.json,
    )
}

// --------------------------------------------------------------- schema

#[derive(clap::Args, Debug)]
pub struct SchemaArgs {
    #[command(subcommand)]
    pub command: SchemaCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum SchemaCommand {
    /// Show servertypes and attributes.
    Show {
        /// Only this servertype (its attributes, required and defaults).
        servertype: Option<String>,
        /// Print the schema as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply schema changes from a JSON file, all of them or none: a list
    /// of changes, or `{"changes": [...]}`; each `{"action":
    /// "create_attribute", "attribute": {...}}` and so on (see docs/api.md).
    Apply {
        /// The file (`-` for stdin).
        file: PathBuf,
        /// Check the file without sending it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show the latest batches of schema changes, newest first: id, time,
    /// author and what each batch changed.
    History {
        /// At most this many batches (1-10000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print the batches as JSON, every change in full.
        #[arg(long)]
        json: bool,
    },
}

pub fn schema(global: &Global, args: SchemaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SchemaCommand::Show { servertype, json } => schema_show(global, servertype, json),
        SchemaCommand::Apply { file, dry_run } => schema_apply(global, &file, dry_run),
        SchemaCommand::History { limit, json } => schema_history(global, limit, json),
    }
}

fn schema_history(global: &Global, limit: usize, json: bool) -> anyhow::Result<ExitCode> {
    // The server checks the limit (1-10000) and says so.
    let records = client(global)?
        .schema_history(Some(limit))
        .map_err(client_error)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &records)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let header = ["id", "time", "author", "changes"].map(String::from);
    let rows = records
        .iter()
        .map(|r| {
            vec![
                r.schema_change_id.to_string(),
                r.time.0.to_string(),
                r.author.clone(),
                summarize_schema_changes(&r.changes),
            ]
        })
        .collect();
    writeln!(out, "{}", table(&header, rows))?;
    Ok(ExitCode::SUCCESS)
}

/// "create_attribute rack, update_servertype hypervisor": the first few
/// changes of a batch and how many more (`--json` shows all).
fn summarize_schema_changes(changes: &[SchemaChange]) -> String {
    const SHOWN: usize = 3;
    let mut parts: Vec<String> = changes
        .iter()
        .take(SHOWN)
        .map(herd_store::describe_schema_change)
        .collect();
    if changes.len() > SHOWN {
        parts.push(format!("and {} more", changes.len() - SHOWN));
    }
    parts.join(", ")
}

fn schema_show(
    global: &Global,
    servertype: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let schema = client(global)?.schema().map_err(client_error)?;
    let mut out = std::io::stdout().lock();
    if let Some(id) = servertype {
        let st = schema.servertype(&id).ok_or_else(|| {
            Exit::new(
                exit::NOT_FOUND,
                format!("no servertype {id:?}; `herd schema show` lists them"),
            )
        })?;
        if json {
            serde_json::to_writer_pretty(&mut out, st)?;
            writeln!(out)?;
            return Ok(ExitCode::SUCCESS);
        }
        writeln!(
            out,
            "{} ({}): {}",
            st.servertype_id,
            ip_type(st),
            st.description
        )?;
        let header = ["attribute", "type", "multi", "required", "default"].map(String::from);
        let rows = st
            .attributes
            .iter()
            .map(|sa| {
                let ty = schema
                    .attribute_type(&sa.attribute_id)
                    .map(|t| t.name().to_string())
                    .unwrap_or_default();
                vec![
                    sa.attribute_id.clone(),
                    ty,
                    yes_no(schema.is_multi(&sa.attribute_id)),
                    yes_no(sa.required),
                    sa.default_value
                        .as_ref()
                        .map(Value::to_text)
                        .unwrap_or_default(),
                ]
            })
            .collect();
        writeln!(out, "{}", table(&header, rows))?;
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        serde_json::to_writer_pretty(&mut out, &schema)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let header = ["servertype", "ip_addr_type", "attributes", "description"].map(String::from);
    let rows = schema
        .servertypes
        .values()
        .map(|st| {
            vec![
                st.servertype_id.clone(),
                ip_type(st),
                st.attributes.len().to_string(),
                st.description.clone(),
            ]
        })
        .collect();
    writeln!(out, "{}", table(&header, rows))?;
    let header = ["attribute", "type", "multi", "target", "regexp"].map(String::from);
    let rows = schema
        .attributes
        .values()
        .map(|a| {
            vec![
                a.attribute_id.clone(),
                a.attribute_type.name().to_string(),
                yes_no(a.is_multi()),
                a.target_servertype.clone().unwrap_or_default(),
                a.regexp.clone().unwrap_or_default(),
            ]
        })
        .collect();
    writeln!(out, "{}", table(&header, rows))?;
    Ok(ExitCode::SUCCESS)
}

fn ip_type(st: &herd_model::Servertype) -> String {
    serde_json::to_value(st.ip_addr_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "null".to_string())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "" }.to_string()
}

fn schema_apply(global: &Global, file: &PathBuf, dry_run: bool) -> anyhow::Result<ExitCode> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| Exit::new(exit::USAGE, format!("cannot read {}: {e}", file.display())))?
    };
    let changes = parse_schema_changes(&text)
        .map_err(|e| Exit::new(exit::USAGE, format!("{}: {e}", file.display())))?;
    if dry_run {
        println!(
            "{} schema changes parse; nothing was sent (dry run)",
            changes.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let id = client(global)?
        .change_schema(&changes)
        .map_err(client_error)?;
    println!(
        "applied {} schema changes as schema change {id}",
        changes.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// A list of changes, `{"changes": [...]}`, or one change.
pub fn parse_schema_changes(text: &str) -> Result<Vec<SchemaChange>, String> {
    SchemaChange::parse_batch(serde_json::from_str(text).map_err(|e| e.to_string())?)
}

// -------------------------------------------------------------- history

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  herd history vm1
  herd history --object-id 42      # also for deleted objects
  herd history --commit 17
  herd history                     # the latest commits")]
pub struct HistoryArgs {
    /// Hostname of the object.
    pub hostname: Option<String>,
    /// The object with this id (works for deleted objects too).
    #[arg(long, conflicts_with = "hostname")]
    pub object_id: Option<i64>,
    /// Just this commit.
    #[arg(long, conflicts_with_all = ["hostname", "object_id"])]
    pub commit: Option<i64>,
    /// At most this many commits, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print the commits as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn history(global: &Global, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let query = HistoryQuery {
        object_id: args.object_id,
        hostname: args.hostname.clone(),
        commit_id: args.commit,
        limit: Some(args.limit),
    };
    let records = client(global)?.history(&query).map_err(client_error)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &records)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let header = [
        "commit",
        "time",
        "author",
        "object",
        "change",
        "attribute",
        "old",
        "new",
    ]
    .map(String::from);
    let mut rows = Vec::new();
    for record in &records {
        for change in &record.changes {
            let kind = serde_json::to_value(change.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            if change.attributes.is_empty() {
                attributes_row(&mut rows, record, change, &kind, None);
            }
            for diff in &change.attributes {
                attributes_row(&mut rows, record, change, &kind, Some(diff));
            }
        }
    }
    writeln!(out, "{}", table(&header, rows))?;
    Ok(ExitCode::SUCCESS)
}

fn attributes_row(
    rows: &mut Vec<Vec<String>>,
    record: &herd_client::CommitRecord,
    change: &herd_model::ObjectChange,
    kind: &str,
    attr: Option<(&String, &herd_model::AttributeDiff)>,
) {
    let (name, old, new) = match attr {
        Some((a, d)) => (a.clone(), d.old.to_text(), d.new.to_text()),
        None => (String::new(), String::new(), String::new()),
    };
    rows.push(vec![
        record.commit_id.to_string(),
        record.time.0.to_string(),
        record.author.clone(),
        change.hostname.clone(),
        kind.to_string(),
        name,
        old,
        new,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_attributes_become_relation_restricts() {
        let r = restrict_of(&[
            "hostname".into(),
            "hypervisor".into(),
            "hypervisor.num_cpu".into(),
            "hypervisor.hostname".into(),
        ]);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!(["hostname", {"hypervisor": ["num_cpu", "hostname"]}])
        );
    }

    #[test]
    fn schema_changes_parse_from_a_list() {
        let text = r#"[{"action": "delete_attribute", "attribute_id": "os"}]"#;
        assert_eq!(parse_schema_changes(text).unwrap().len(), 1);
        assert!(parse_schema_changes(r#"[{"action": "nope"}]"#)
            .unwrap_err()
            .starts_with("schema change 1"));
    }
}
