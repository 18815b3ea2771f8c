//! `herd hv bootstrap`: the seed's first steps, idempotent. A pure planner
//! turns what the host has into the steps it lacks; [`Hypervisor::bootstrap`]
//! runs them.
//!
//! The `default` dir pool comes first (every VM needs it), then the
//! `default` NAT network where the host has a network driver.

use crate::facts::{HostFacts, PoolFacts};
use crate::hypervisor::is;
use crate::{xml, Hypervisor, VirtError};
use serde::Serialize;
use virt::error::ErrorNumber;

/// Where the `default` pool goes unless told otherwise (the seed's path).
pub const DEFAULT_IMAGES_DIR: &str = "/var/lib/libvirt/images";
pub const DEFAULT_POOL: &str = "default";
pub const DEFAULT_NETWORK: &str = "default";

#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    /// Target path of the `default` pool.
    pub images_dir: String,
    /// Plan only; change nothing.
    pub dry_run: bool,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            images_dir: DEFAULT_IMAGES_DIR.to_string(),
            dry_run: false,
        }
    }
}

/// One change bootstrap makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum Step {
    DefinePool { path: String },
    BuildPool,
    AutostartPool,
    StartPool,
    DefineNetwork,
    AutostartNetwork,
    StartNetwork,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::DefinePool { path } => write!(f, "define dir pool 'default' at {path}"),
            Step::BuildPool => f.write_str("build pool 'default' (create its directory)"),
            Step::AutostartPool => f.write_str("autostart pool 'default'"),
            Step::StartPool => f.write_str("start pool 'default'"),
            Step::DefineNetwork => f.write_str("define network 'default' (NAT, virbr0)"),
            Step::AutostartNetwork => f.write_str("autostart network 'default'"),
            Step::StartNetwork => f.write_str("start network 'default'"),
        }
    }
}

/// The `default` network as the host has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkState {
    /// The host's libvirtd has no network driver.
    Unsupported,
    Missing,
    Present {
        active: bool,
        autostart: bool,
    },
}

/// What the host has before bootstrap.
#[derive(Debug, Clone)]
pub struct Current {
    pub pool: Option<PoolFacts>,
    pub network: NetworkState,
}

/// The steps a host lacks, and notes on what bootstrap leaves alone.
pub fn plan(current: &Current, images_dir: &str) -> (Vec<Step>, Vec<String>) {
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    match &current.pool {
        None => steps.extend([
            Step::DefinePool {
                path: images_dir.to_string(),
            },
            Step::BuildPool,
            Step::AutostartPool,
            Step::StartPool,
        ]),
        Some(p) => {
            if p.path != images_dir || p.kind != "dir" {
                notes.push(format!(
                    "pool 'default' already exists as a {} pool at {} (not a dir pool at {images_dir}); left as it is",
                    p.kind, p.path
                ));
            }
            if !p.autostart {
                steps.push(Step::AutostartPool);
            }
            if !p.active {
                if p.kind == "dir" {
                    steps.push(Step::BuildPool);
                }
                steps.push(Step::StartPool);
            }
        }
    }
    match current.network {
        NetworkState::Unsupported => notes.push(
            "this libvirtd has no network driver: network 'default' skipped (use --bridge, --macvtap or --no-network for VMs)"
                .to_string(),
        ),
        NetworkState::Missing => steps.extend([
            Step::DefineNetwork,
            Step::AutostartNetwork,
            Step::StartNetwork,
        ]),
        NetworkState::Present { active, autostart } => {
            if !autostart {
                steps.push(Step::AutostartNetwork);
            }
            if !active {
                steps.push(Step::StartNetwork);
            }
        }
    }
    (steps, notes)
}

/// What bootstrap did (or, with `dry_run`, would do) and the host after it.
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapReport {
    pub uri: String,
    pub dry_run: bool,
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
    pub host: HostFacts,
}

impl BootstrapReport {
    pub fn changed(&self) -> bool {
        !self.steps.is_empty() && !self.dry_run
    }
}

impl Hypervisor {
    /// Make sure the `default` pool and network exist, autostart and run.
    pub fn bootstrap(&self, opts: &BootstrapOptions) -> Result<BootstrapReport, VirtError> {
        let current = self.current()?;
        let (steps, notes) = plan(&current, &opts.images_dir);
        if !opts.dry_run {
            for step in &steps {
                self.apply(step)?;
            }
        }
        Ok(BootstrapReport {
            uri: self.uri().to_string(),
            dry_run: opts.dry_run,
            steps,
            notes,
            host: self.facts()?,
        })
    }

    fn current(&self) -> Result<Current, VirtError> {
        let pool = match self.pool(DEFAULT_POOL) {
            Ok(p) => Some(p),
            Err(VirtError::PoolNotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let network = match self.networks()? {
            None => NetworkState::Unsupported,
            Some(nets) => match nets.into_iter().find(|n| n.name == DEFAULT_NETWORK) {
                None => NetworkState::Missing,
                Some(n) => NetworkState::Present {
                    active: n.active,
                    autostart: n.autostart,
                },
            },
        };
        Ok(Current { pool, network })
    }

    fn apply(&self, step: &Step) -> Result<(), VirtError> {
        let conn = self.connect();
        let fail = |e: virt::error::Error| VirtError::Libvirt {
            uri: self.uri().to_string(),
            action: step.to_string(),
            detail: e.message().to_string(),
        };
        let pool = || conn.lookup_storage_pool_by_name(DEFAULT_POOL).map_err(fail);
        let network = || conn.lookup_network_by_name(DEFAULT_NETWORK).map_err(fail);
        match step {
            Step::DefinePool { path } => conn
                .define_storage_pool_xml(&xml::dir_pool_xml(DEFAULT_POOL, path), 0)
                .map(drop)
                .map_err(fail),
            Step::BuildPool => pool()?.build(0).map_err(fail),
            Step::AutostartPool => pool()?.set_autostart(true).map(drop).map_err(fail),
            Step::StartPool => pool()?.create(0).map_err(fail),
            Step::DefineNetwork => conn
                .define_network_xml(&xml::default_network_xml())
                .map(drop)
                .map_err(|e| {
                    if is(&e, ErrorNumber::NetworkExist) {
                        VirtError::Libvirt {
                            uri: self.uri().to_string(),
                            action: step.to_string(),
                            detail:
                                "a network named 'default' appeared meanwhile; run bootstrap again"
                                    .into(),
                        }
                    } else {
                        fail(e)
                    }
                }),
            Step::AutostartNetwork => network()?.set_autostart(true).map(drop).map_err(fail),
            Step::StartNetwork => network()?.create().map_err(fail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(active: bool, autostart: bool) -> PoolFacts {
        PoolFacts {
            name: "default".into(),
            kind: "dir".into(),
            path: DEFAULT_IMAGES_DIR.into(),
            active,
            autostart,
            capacity: 0,
            allocation: 0,
            available: 0,
        }
    }

    #[test]
    fn a_fresh_host_gets_pool_then_network() {
        let (steps, notes) = plan(
            &Current {
                pool: None,
                network: NetworkState::Missing,
            },
            DEFAULT_IMAGES_DIR,
        );
        assert_eq!(
            steps,
            vec![
                Step::DefinePool {
                    path: DEFAULT_IMAGES_DIR.into()
                },
                Step::BuildPool,
                Step::AutostartPool,
                Step::StartPool,
                Step::DefineNetwork,
                Step::AutostartNetwork,
                Step::StartNetwork,
            ]
        );
        assert!(notes.is_empty());
    }

    #[test]
    fn a_bootstrapped_host_needs_nothing() {
        let (steps, notes) = plan(
            &Current {
                pool: Some(pool(true, true)),
                network: NetworkState::Present {
                    active: true,
                    autostart: true,
                },
            },
            DEFAULT_IMAGES_DIR,
        );
        assert!(steps.is_empty());
        assert!(notes.is_empty());
    }

    #[test]
    fn only_the_missing_flags_are_set() {
        let (steps, _) = plan(
            &Current {
                pool: Some(pool(false, true)),
                network: NetworkState::Present {
                    active: true,
                    autostart: false,
                },
            },
            DEFAULT_IMAGES_DIR,
        );
        assert_eq!(
            steps,
            vec![Step::BuildPool, Step::StartPool, Step::AutostartNetwork]
        );
    }

    #[test]
    fn an_existing_pool_elsewhere_is_left_alone_with_a_note() {
        let mut p = pool(true, true);
        p.path = "/srv/images".into();
        let (steps, notes) = plan(
            &Current {
                pool: Some(p),
                network: NetworkState::Unsupported,
            },
            DEFAULT_IMAGES_DIR,
        );
        assert!(steps.is_empty());
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("/srv/images"));
        assert!(notes[1].contains("no network driver"));
    }
}
