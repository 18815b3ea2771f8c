//! Loading the benchmark fleet (`bench/fleet-100k`: `schema.json`,
//! `hypervisors.jsonl`, `vms.jsonl`, `bench_params.json`) into any store,
//! and its five queries, so every engine and the HTTP layer measure the
//! same work. [`bench`] measures and prints that work for every engine's
//! `store` bench.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use herd_model::{
    Attribute, AttributeType, Commit, Filter, InetFamily, IpAddrType, Object, Query, Restrict,
    SchemaChange, Servertype, ServertypeAttribute, Value,
};
use serde::Deserialize;

use crate::{Store, StoreError};

pub mod bench;

/// Why loading the fleet failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("reading {path}: {source}; generate the fleet with gen_dataset.py and make_params.py")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Deserialize)]
struct FleetSchema {
    servertypes: Vec<FleetServertype>,
    attributes: BTreeMap<String, (String, bool, serde_json::Value)>,
    servertype_attributes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    required: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct FleetServertype {
    servertype_id: String,
    ip_addr_type: IpAddrType,
    #[serde(default)]
    description: String,
}

/// The fixed parameters of the five queries and the commit.
#[derive(Clone, Debug, Deserialize)]
pub struct BenchParams {
    pub hostnames: Vec<String>,
    pub game_world: i64,
    pub hypervisor: String,
    pub regexp: String,
    pub net24: String,
    pub commit_hostname: String,
}

fn read(path: &Path) -> Result<String, FleetError> {
    std::fs::read_to_string(path).map_err(|source| FleetError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn parse_error(path: &Path, line: usize, message: impl ToString) -> FleetError {
    FleetError::Parse {
        path: path.display().to_string(),
        line,
        message: message.to_string(),
    }
}

/// The schema changes that create the fleet's schema, in a valid order.
pub fn schema_changes(schema_json: &str) -> Result<Vec<SchemaChange>, String> {
    let fleet: FleetSchema = serde_json::from_str(schema_json).map_err(|e| e.to_string())?;
    let mut changes = Vec::new();
    for s in &fleet.servertypes {
        let mut st = Servertype::new(&s.servertype_id, s.ip_addr_type);
        st.description = s.description.clone();
        changes.push(SchemaChange::CreateServertype { servertype: st });
    }
    for (id, (ty, multi, extra)) in &fleet.attributes {
        let ty: AttributeType = serde_json::from_value(serde_json::Value::String(ty.clone()))
            .map_err(|e| format!("attribute {id}: {e}"))?;
        let mut a = Attribute::new(id, ty);
        a.multi = *multi;
        a.target_servertype = extra
            .get("target")
            .and_then(|t| t.as_str())
            .map(str::to_owned);
        a.inet_address_family = match extra.get("af").and_then(|t| t.as_str()) {
            Some("IPV4") => Some(InetFamily::Ipv4),
            Some("IPV6") => Some(InetFamily::Ipv6),
            _ => None,
        };
        changes.push(SchemaChange::CreateAttribute { attribute: a });
    }
    for s in &fleet.servertypes {
        let mut st = Servertype::new(&s.servertype_id, s.ip_addr_type);
        st.description = s.description.clone();
        let required = fleet.required.get(&s.servertype_id);
        for a in fleet
            .servertype_attributes
            .get(&s.servertype_id)
            .into_iter()
            .flatten()
        {
            let mut sa = ServertypeAttribute::new(a);
            sa.required = required.is_some_and(|r| r.contains(a));
            st.attributes.push(sa);
        }
        changes.push(SchemaChange::UpdateServertype { servertype: st });
    }
    Ok(changes)
}

/// Creates the schema and loads every object, `batch` objects per commit.
/// `progress` gets the number of objects loaded so far.
pub fn load(
    store: &dyn Store,
    dir: &Path,
    batch: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, FleetError> {
    let changes = schema_changes(&read(&dir.join("schema.json"))?)
        .map_err(|m| parse_error(&dir.join("schema.json"), 1, m))?;
    store.change_schema(&changes, "fleet loader")?;
    let mut loaded = 0;
    for file in ["hypervisors.jsonl", "vms.jsonl"] {
        let path = dir.join(file);
        let f = std::fs::File::open(&path).map_err(|source| FleetError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut pending: Vec<Object> = Vec::with_capacity(batch);
        for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|source| FleetError::Read {
                path: path.display().to_string(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let mut o: Object =
                serde_json::from_str(&line).map_err(|e| parse_error(&path, n + 1, e))?;
            o.fields.retain(|_, v| !v.is_null());
            pending.push(o);
            if pending.len() >= batch {
                loaded += commit_batch(store, &mut pending)?;
                progress(loaded);
            }
        }
        loaded += commit_batch(store, &mut pending)?;
        progress(loaded);
    }
    Ok(loaded)
}

fn commit_batch(store: &dyn Store, pending: &mut Vec<Object>) -> Result<usize, FleetError> {
    if pending.is_empty() {
        return Ok(0);
    }
    let commit = Commit {
        created: std::mem::take(pending),
        ..Commit::default()
    };
    store.commit(&commit, "fleet loader")?;
    Ok(commit.created.len())
}

/// Reads `bench_params.json`.
pub fn params(dir: &Path) -> Result<BenchParams, FleetError> {
    let path = dir.join("bench_params.json");
    serde_json::from_str(&read(&path)?).map_err(|e| parse_error(&path, 1, e))
}

fn restrict(attrs: &[&str]) -> Vec<Restrict> {
    attrs
        .iter()
        .map(|a| Restrict::Attribute((*a).to_owned()))
        .collect()
}

/// `R5` of the fleet README.
pub const R5: [&str; 6] = [
    "hostname",
    "intern_ip",
    "project",
    "game_world",
    "responsible_admin",
    "object_id",
];

/// The README's five queries; query `a` for the `i`-th hostname.
pub fn query(params: &BenchParams, id: char, i: usize) -> Query {
    let with = |attribute: &str, filter: Filter, restrict: Vec<Restrict>| Query {
        restrict: Some(restrict),
        ..Query::filter(attribute, filter)
    };
    match id {
        'a' => {
            let h = &params.hostnames[i % params.hostnames.len().max(1)];
            with("hostname", Filter::Equals(h.as_str().into()), restrict(&R5))
        }
        'b' => with(
            "game_world",
            Filter::Equals(Value::number(params.game_world)),
            restrict(&R5),
        ),
        'c' => with(
            "hostname",
            Filter::Regexp(params.regexp.clone()),
            restrict(&R5),
        ),
        'd' => {
            let mut r = restrict(&R5);
            r.retain(|a| a.attribute_id() != "game_world");
            r.push(Restrict::Related {
                attribute: "hypervisor".into(),
                restrict: restrict(&["hostname", "object_id"]),
            });
            with(
                "hypervisor",
                Filter::Equals(params.hypervisor.as_str().into()),
                r,
            )
        }
        _ => with(
            "intern_ip",
            Filter::ContainedBy(params.net24.as_str().into()),
            restrict(&R5),
        ),
    }
}
