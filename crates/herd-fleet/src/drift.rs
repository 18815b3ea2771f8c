//! What `herd vm sync` finds: the differences between the domains the
//! checked hypervisors run and the inventory's VM objects. Pure: the caller
//! gathers both sides and applies the repairs ([`crate::inventory::repair`]).

use herd_client::Value;
use herd_virt::{DomainFacts, DomainState};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The domains of one checked hypervisor, under its inventory name.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub hypervisor: String,
    pub domains: Vec<DomainFacts>,
}

/// A VM object of the inventory: hostname and attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedVm {
    pub hostname: String,
    pub attributes: BTreeMap<String, Value>,
}

/// A difference between the inventory and libvirt.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Drift {
    /// A domain on a checked hypervisor that the inventory lacks.
    Unrecorded { vm: String, hypervisor: String },
    /// An attribute whose inventory value differs from libvirt's.
    Changed {
        vm: String,
        attribute: String,
        inventory: Option<Value>,
        libvirt: Value,
    },
    /// The inventory places the VM on a checked hypervisor, but no checked
    /// hypervisor has it.
    Vanished { vm: String, hypervisor: String },
}

impl Drift {
    /// The VM the difference is about.
    pub fn vm(&self) -> &str {
        match self {
            Drift::Unrecorded { vm, .. }
            | Drift::Changed { vm, .. }
            | Drift::Vanished { vm, .. } => vm,
        }
    }

    /// A repair fixes it: libvirt has the VM, so the inventory can follow.
    /// A vanished VM is only reported (it may be moving, or gone for good).
    pub fn repairable(&self) -> bool {
        !matches!(self, Drift::Vanished { .. })
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Unrecorded { vm, hypervisor } => {
                write!(f, "{vm}: on {hypervisor} but not in the inventory")
            }
            Drift::Changed {
                vm,
                attribute,
                inventory: Some(old),
                libvirt,
            } => write!(
                f,
                "{vm}: {attribute} is {old} in the inventory, {libvirt} in libvirt"
            ),
            Drift::Changed {
                vm,
                attribute,
                inventory: None,
                libvirt,
            } => write!(
                f,
                "{vm}: {attribute} is unset in the inventory, {libvirt} in libvirt"
            ),
            Drift::Vanished { vm, hypervisor } => write!(
                f,
                "{vm}: the inventory places it on {hypervisor}, but no checked hypervisor has it"
            ),
        }
    }
}

/// The inventory attributes of a VM as libvirt describes it: `hypervisor`
/// (relation), `memory` (MiB), `num_cpu`, `disk_size_gib` (rounded up) and
/// `state`.
pub fn vm_attributes(d: &DomainFacts, hypervisor: &str) -> Vec<(&'static str, Value)> {
    const GIB: u64 = 1 << 30;
    vec![
        ("hypervisor", Value::from(hypervisor)),
        ("memory", Value::from((d.memory >> 20) as i64)),
        ("num_cpu", Value::from(i64::from(d.vcpus))),
        (
            "disk_size_gib",
            Value::from(d.disk_capacity().div_ceil(GIB) as i64),
        ),
        ("state", Value::from(state_name(d.state))),
    ]
}

/// The inventory's spelling of a run state (one word, unlike
/// [`DomainState::as_str`]'s "shut off").
fn state_name(s: DomainState) -> &'static str {
    match s {
        DomainState::Running => "running",
        DomainState::Paused => "paused",
        DomainState::Shutdown => "shutdown",
        DomainState::Shutoff => "shutoff",
        DomainState::Crashed => "crashed",
        DomainState::Suspended => "suspended",
        DomainState::Other => "unknown",
    }
}

/// Every difference between what the checked hypervisors run and the
/// inventory's VMs: domains first (in the order observed), then the VMs
/// that vanished from a checked hypervisor. An attribute set to null counts
/// as unset.
pub fn drift(observed: &[Observed], inventory: &[RecordedVm]) -> Vec<Drift> {
    let mut out = Vec::new();
    for o in observed {
        for d in &o.domains {
            out.extend(domain_drift(d, &o.hypervisor, inventory));
        }
    }
    out.extend(inventory.iter().filter_map(|vm| vanished(vm, observed)));
    out
}

/// The domains a repair records, with the hypervisor each runs on: those
/// with a repairable difference.
pub fn to_record<'a>(observed: &'a [Observed], found: &[Drift]) -> Vec<(&'a str, &'a DomainFacts)> {
    observed
        .iter()
        .flat_map(|o| o.domains.iter().map(|d| (o.hypervisor.as_str(), d)))
        .filter(|(_, d)| found.iter().any(|x| x.repairable() && x.vm() == d.name))
        .collect()
}

fn domain_drift(d: &DomainFacts, hypervisor: &str, inventory: &[RecordedVm]) -> Vec<Drift> {
    let Some(recorded) = inventory.iter().find(|vm| vm.hostname == d.name) else {
        return vec![Drift::Unrecorded {
            vm: d.name.clone(),
            hypervisor: hypervisor.to_string(),
        }];
    };
    vm_attributes(d, hypervisor)
        .into_iter()
        .filter_map(|(attribute, value)| {
            let current = recorded
                .attributes
                .get(attribute)
                .filter(|v| **v != Value::Null);
            (current != Some(&value)).then(|| Drift::Changed {
                vm: d.name.clone(),
                attribute: attribute.to_string(),
                inventory: current.cloned(),
                libvirt: value,
            })
        })
        .collect()
}

fn vanished(vm: &RecordedVm, observed: &[Observed]) -> Option<Drift> {
    let Some(Value::String(hypervisor)) = vm.attributes.get("hypervisor") else {
        return None;
    };
    let checked = observed.iter().any(|o| o.hypervisor == *hypervisor);
    let seen = observed
        .iter()
        .any(|o| o.domains.iter().any(|d| d.name == vm.hostname));
    (checked && !seen).then(|| Drift::Vanished {
        vm: vm.hostname.clone(),
        hypervisor: hypervisor.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_virt::DiskFacts;

    fn domain(name: &str, state: DomainState) -> DomainFacts {
        DomainFacts {
            name: name.into(),
            uuid: String::new(),
            state,
            persistent: true,
            autostart: false,
            domain_type: "qemu".into(),
            memory: 512 << 20,
            vcpus: 2,
            disks: vec![DiskFacts {
                target: "vda".into(),
                device: "disk".into(),
                path: None,
                pool: Some("default".into()),
                volume: Some(format!("{name}.qcow2")),
                format: Some("qcow2".into()),
                capacity: Some((10 << 30) + 1),
                allocation: Some(0),
            }],
            nics: vec![],
        }
    }

    fn on(hypervisor: &str, domains: Vec<DomainFacts>) -> Observed {
        Observed {
            hypervisor: hypervisor.into(),
            domains,
        }
    }

    /// The inventory object of a running `name` on `hv`, as a sync records it.
    fn recorded(name: &str, hv: &str) -> RecordedVm {
        let attributes = vm_attributes(&domain(name, DomainState::Running), hv)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        RecordedVm {
            hostname: name.to_string(),
            attributes,
        }
    }

    fn changed(vm: &str, attribute: &str, inventory: Option<Value>, libvirt: Value) -> Drift {
        Drift::Changed {
            vm: vm.into(),
            attribute: attribute.into(),
            inventory,
            libvirt,
        }
    }

    #[test]
    fn vm_attributes_use_mib_and_whole_gib_rounded_up() {
        let attrs = vm_attributes(&domain("vm1", DomainState::Shutoff), "hv1");
        assert_eq!(
            attrs,
            vec![
                ("hypervisor", Value::from("hv1")),
                ("memory", Value::from(512)),
                ("num_cpu", Value::from(2)),
                ("disk_size_gib", Value::from(11)),
                ("state", Value::from("shutoff")),
            ]
        );
    }

    #[test]
    fn cdroms_do_not_count_towards_disk_size() {
        let mut d = domain("vm1", DomainState::Running);
        let mut cdrom = d.disks[0].clone();
        cdrom.device = "cdrom".into();
        cdrom.capacity = Some(100 << 30);
        d.disks.push(cdrom);
        let attrs = vm_attributes(&d, "hv1");
        assert_eq!(attrs[3], ("disk_size_gib", Value::from(11)));
    }

    #[test]
    fn matching_inventory_has_no_drift() {
        let observed = vec![on("hv1", vec![domain("vm1", DomainState::Running)])];
        assert_eq!(drift(&observed, &[recorded("vm1", "hv1")]), vec![]);
    }

    #[test]
    fn unrecorded_changed_moved_and_vanished_vms_are_found() {
        let observed = vec![
            on(
                "hv1",
                vec![
                    domain("vm1", DomainState::Shutoff),
                    domain("new", DomainState::Running),
                ],
            ),
            on("hv2", vec![domain("moved", DomainState::Running)]),
        ];
        let inventory = vec![
            recorded("vm1", "hv1"),
            recorded("moved", "hv1"),
            recorded("gone", "hv2"),
            recorded("elsewhere", "hv9"),
        ];
        assert_eq!(
            drift(&observed, &inventory),
            vec![
                changed(
                    "vm1",
                    "state",
                    Some(Value::from("running")),
                    Value::from("shutoff")
                ),
                Drift::Unrecorded {
                    vm: "new".into(),
                    hypervisor: "hv1".into()
                },
                changed(
                    "moved",
                    "hypervisor",
                    Some(Value::from("hv1")),
                    Value::from("hv2")
                ),
                Drift::Vanished {
                    vm: "gone".into(),
                    hypervisor: "hv2".into()
                },
            ]
        );
    }

    #[test]
    fn null_and_missing_attributes_count_as_unset() {
        let observed = vec![on("hv1", vec![domain("vm1", DomainState::Running)])];
        let mut vm = recorded("vm1", "hv1");
        vm.attributes.insert("memory".into(), Value::Null);
        vm.attributes.remove("num_cpu");
        let found = drift(&observed, &[vm]);
        assert_eq!(
            found,
            vec![
                changed("vm1", "memory", None, Value::from(512)),
                changed("vm1", "num_cpu", None, Value::from(2)),
            ]
        );
        assert_eq!(
            found[0].to_string(),
            "vm1: memory is unset in the inventory, 512 in libvirt"
        );
    }

    #[test]
    fn a_vm_without_a_hypervisor_never_vanishes() {
        let observed = vec![on("hv1", vec![])];
        let mut vm = recorded("vm1", "hv1");
        vm.attributes.remove("hypervisor");
        assert_eq!(drift(&observed, &[vm]), vec![]);
    }

    #[test]
    fn repairs_record_drifted_domains_but_not_vanished_or_clean_ones() {
        let observed = vec![
            on(
                "hv1",
                vec![
                    domain("clean", DomainState::Running),
                    domain("new", DomainState::Running),
                ],
            ),
            on("hv2", vec![domain("stopped", DomainState::Shutoff)]),
        ];
        let inventory = vec![
            recorded("clean", "hv1"),
            recorded("stopped", "hv2"),
            recorded("gone", "hv1"),
        ];
        let found = drift(&observed, &inventory);
        assert_eq!(found.len(), 3, "{found:?}");
        let names: Vec<(&str, &str)> = to_record(&observed, &found)
            .into_iter()
            .map(|(hv, d)| (hv, d.name.as_str()))
            .collect();
        assert_eq!(names, vec![("hv1", "new"), ("hv2", "stopped")]);
    }

    #[test]
    fn drift_reads_as_a_sentence_and_serializes_with_its_kind() {
        let moved = changed(
            "vm1",
            "hypervisor",
            Some(Value::from("hv1")),
            Value::from("hv2"),
        );
        assert_eq!(
            moved.to_string(),
            "vm1: hypervisor is hv1 in the inventory, hv2 in libvirt"
        );
        let gone = Drift::Vanished {
            vm: "vm2".into(),
            hypervisor: "hv1".into(),
        };
        assert_eq!(
            gone.to_string(),
            "vm2: the inventory places it on hv1, but no checked hypervisor has it"
        );
        assert!(!gone.repairable() && moved.repairable());
        let json = serde_json::to_value(&gone).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "vanished", "vm": "vm2", "hypervisor": "hv1"})
        );
    }
}
