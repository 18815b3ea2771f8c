//! The benchmark fleet of `shared/bench/fleet-100k`: its schema file turned
//! into schema changes, its objects, and the fixed query parameters.

use anyhow::{bail, Context};
use herd_model::{
    Attribute, AttributeType, InetFamily, IpAddrType, Object, SchemaChange, Servertype,
    ServertypeAttribute,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `schema.json` as `gen_dataset.py` writes it.
#[derive(Deserialize)]
struct FleetSchema {
    servertypes: Vec<FleetServertype>,
    /// attribute id → [type, multi, {"target": .., "af": ..}]
    attributes: BTreeMap<String, (String, bool, BTreeMap<String, String>)>,
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

/// `bench_params.json` as `make_params.py` writes it.
#[derive(Clone, Debug, Deserialize)]
pub struct Params {
    pub hostnames: Vec<String>,
    pub game_world: i64,
    pub game_world_count: usize,
    pub hypervisor: String,
    pub hypervisor_count: usize,
    pub regexp: String,
    pub regexp_count: usize,
    pub net24: String,
    pub net24_count: usize,
    pub commit_hostname: String,
}

/// The fleet's files in one directory.
pub struct Fleet {
    pub dir: PathBuf,
}

impl Fleet {
    /// Run the generator scripts of `generator` (the fleet-100k directory)
    /// into `out`, with `n_vm` VMs.
    pub fn generate(generator: &Path, out: &Path, n_vm: usize) -> anyhow::Result<Fleet> {
        // make_params.py reads `dirname(OUT_DIR)/dataset`: keep that layout.
        let dir = out.join("dataset");
        for script in ["gen_dataset.py", "make_params.py"] {
            let status = Command::new("python3")
                .arg(generator.join(script))
                .env("OUT_DIR", &dir)
                .env("N_VM", n_vm.to_string())
                .status()
                .with_context(|| format!("cannot run python3 {script}"))?;
            if !status.success() {
                bail!("{script} failed ({status})");
            }
        }
        Ok(Fleet { dir })
    }

    pub fn params(&self) -> anyhow::Result<Params> {
        let path = self.dir.join("bench_params.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
    }

    /// The schema as changes in an order every engine accepts: servertypes
    /// first (empty), then attributes (relations can name their target),
    /// then each servertype's attribute list.
    pub fn schema_changes(&self) -> anyhow::Result<Vec<SchemaChange>> {
        let path = self.dir.join("schema.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let fleet: FleetSchema = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a fleet schema", path.display()))?;
        let mut changes = Vec::new();
        for st in &fleet.servertypes {
            let mut servertype = Servertype::new(&st.servertype_id, st.ip_addr_type);
            servertype.description = st.description.clone();
            changes.push(SchemaChange::CreateServertype { servertype });
        }
        for (id, (ty, multi, extra)) in &fleet.attributes {
            let ty: AttributeType =
                serde_json::from_value(serde_json::Value::String(ty.clone()))
                    .with_context(|| format!("attribute {id}: unknown type {ty}"))?;
            let mut attribute = Attribute::new(id, ty);
            attribute.multi = *multi;
            attribute.target_servertype = extra.get("target").cloned();
            attribute.inet_address_family = match extra.get("af").map(String::as_str) {
                Some("IPV4") => Some(InetFamily::Ipv4),
                Some("IPV6") => Some(InetFamily::Ipv6),
                _ => None,
            };
            changes.push(SchemaChange::CreateAttribute { attribute });
        }
        for st in &fleet.servertypes {
            let required = fleet.required.get(&st.servertype_id);
            let mut servertype = Servertype::new(&st.servertype_id, st.ip_addr_type);
            servertype.description = st.description.clone();
            for a in fleet
                .servertype_attributes
                .get(&st.servertype_id)
                .into_iter()
                .flatten()
            {
                let mut sa = ServertypeAttribute::new(a);
                sa.required = required.is_some_and(|r| r.contains(a));
                servertype.attributes.push(sa);
            }
            changes.push(SchemaChange::UpdateServertype { servertype });
        }
        Ok(changes)
    }

    pub fn hypervisors(&self) -> anyhow::Result<Vec<Object>> {
        read_jsonl(&self.dir.join("hypervisors.jsonl"))
    }

    pub fn vms(&self) -> anyhow::Result<Vec<Object>> {
        read_jsonl(&self.dir.join("vms.jsonl"))
    }
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Object>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut objects = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let object: Object =
            serde_json::from_str(&line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        objects.push(object);
    }
    Ok(objects)
}
