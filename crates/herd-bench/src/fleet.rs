//! The benchmark fleet of `shared/bench/fleet-100k`: generating it, its
//! objects, and the fixed query parameters with the expected result counts.
//! Schema conversion and the queries come from `herd_store::fleet`, shared
//! with the in-process store bench.

use anyhow::{bail, Context};
use herd_model::{Object, SchemaChange};
use serde::Deserialize;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `bench_params.json` says besides the query parameters: the
/// expected result counts, and the hostnames the commits change.
#[derive(Clone, Debug, Deserialize)]
pub struct Params {
    pub hostnames: Vec<String>,
    pub game_world_count: usize,
    pub hypervisor_count: usize,
    pub regexp_count: usize,
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

    /// The schema as changes, converted as the in-process store bench does
    /// (`herd_store::fleet`), so both measure the same fleet.
    pub fn schema_changes(&self) -> anyhow::Result<Vec<SchemaChange>> {
        let path = self.dir.join("schema.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        herd_store::fleet::schema_changes(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a fleet schema: {e}", path.display()))
    }

    /// The query parameters in the shape `herd_store::fleet::query` takes.
    pub fn bench_params(&self) -> anyhow::Result<herd_store::fleet::BenchParams> {
        Ok(herd_store::fleet::params(&self.dir)?)
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
