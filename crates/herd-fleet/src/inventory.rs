//! The inventory as the hypervisor commands use it, over
//! [`herd_client::Client`]: hypervisors are objects of servertype
//! `hypervisor` with a `libvirt_uri`; VMs are objects of servertype `vm`
//! whose attributes [`crate::vm_attributes`] derives from libvirt. Every
//! write is one commit with compare-and-swap on the values read.

use crate::drift::{self, Drift, Observed, RecordedVm};
use crate::{FleetError, Hv};
use herd_client::{commit_of, Client, ClientError, Filter, Query, TrackedObject, Value};
use herd_virt::DomainFacts;

/// The `libvirt_uri` of the inventory hypervisor `name`.
pub fn hypervisor_uri(client: &Client, name: &str) -> Result<String, FleetError> {
    let object = client.get(name)?;
    string(object.get("libvirt_uri")).ok_or_else(|| FleetError::NoLibvirtUri {
        name: name.to_string(),
    })
}

/// The hostname of the inventory hypervisor whose `libvirt_uri` is `uri`.
pub fn hypervisor_named_by_uri(client: &Client, uri: &str) -> Result<Option<String>, FleetError> {
    let query = Query::filter("servertype", Filter::Equals(Value::from("hypervisor")))
        .and("libvirt_uri", Filter::Equals(Value::from(uri)));
    let found = client.query(&query)?;
    Ok(found.first().and_then(|o| o.hostname()).map(str::to_string))
}

/// A hypervisor given as an inventory hostname or as the `libvirt_uri` of
/// one; either way it must be in the inventory.
pub fn hypervisor(client: &Client, given: &str) -> Result<Hv, FleetError> {
    if !crate::is_uri(given) {
        return Ok(Hv {
            name: given.to_string(),
            uri: hypervisor_uri(client, given)?,
        });
    }
    let name = hypervisor_named_by_uri(client, given)?.ok_or_else(|| FleetError::UnknownUri {
        uri: given.to_string(),
    })?;
    Ok(Hv {
        name,
        uri: given.to_string(),
    })
}

/// Every inventory hypervisor that has a `libvirt_uri`, even an empty one
/// (which then fails to open, and says so).
pub fn hypervisors(client: &Client) -> Result<Vec<Hv>, FleetError> {
    let found = client.query(&Query::filter(
        "servertype",
        Filter::Equals(Value::from("hypervisor")),
    ))?;
    Ok(found
        .iter()
        .filter_map(|o| match o.get("libvirt_uri") {
            Some(Value::String(uri)) => Some(Hv {
                name: o.hostname()?.to_string(),
                uri: uri.clone(),
            }),
            _ => None,
        })
        .collect())
}

/// The hypervisors matching `query` (serveradmin's text syntax; none: all)
/// that have a `libvirt_uri` other than `except`: where a VM of `except`
/// may go.
pub fn candidates(
    client: &Client,
    query: Option<&str>,
    except: &str,
) -> Result<Vec<Hv>, FleetError> {
    let text = format!("servertype=hypervisor {}", query.unwrap_or(""));
    let found = client.query_text(text.trim())?;
    let mut hvs = with_uris(&found);
    hvs.retain(|hv| hv.uri != except);
    Ok(hvs)
}

/// The hostname of the object whose `libvirt_uri` is `uri`, if the
/// inventory answers and has one.
pub fn name_of_uri(client: &Client, uri: &str) -> Option<String> {
    let query = Query::filter("libvirt_uri", Filter::Equals(Value::from(uri)));
    let found = client.query(&query).ok()?;
    found.first().and_then(|o| o.hostname().map(String::from))
}

/// Every VM object of the inventory.
pub fn vms(client: &Client) -> Result<Vec<RecordedVm>, FleetError> {
    let found = client.query(&Query::filter(
        "servertype",
        Filter::Equals(Value::from("vm")),
    ))?;
    Ok(found
        .iter()
        .filter_map(|o| {
            Some(RecordedVm {
                hostname: o.hostname()?.to_string(),
                attributes: o.object().fields.clone(),
            })
        })
        .collect())
}

/// The hypervisor an inventory object (a VM) names, if any.
pub fn recorded_hypervisor(object: &TrackedObject) -> Option<String> {
    string(object.get("hypervisor"))
}

/// What [`register_hypervisor`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Created,
    Updated,
    Unchanged,
}

impl Registration {
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Created => "created",
            Registration::Updated => "updated",
            Registration::Unchanged => "unchanged",
        }
    }
}

/// Register a hypervisor (servertype `hypervisor`, `libvirt_uri`) or
/// update its URI. An object of another servertype under `name` is refused.
pub fn register_hypervisor(
    client: &Client,
    name: &str,
    uri: &str,
) -> Result<Registration, FleetError> {
    let (mut object, outcome) = match client.get(name) {
        Ok(o) if o.servertype() != Some("hypervisor") => {
            return Err(FleetError::NotAHypervisor {
                name: name.to_string(),
                servertype: o.servertype().unwrap_or("object").to_string(),
            })
        }
        Ok(o) if o.get("libvirt_uri") == Some(&Value::from(uri)) => {
            return Ok(Registration::Unchanged)
        }
        Ok(o) => (o, Registration::Updated),
        Err(ClientError::NotFound { .. }) => {
            let mut o = client.new_object("hypervisor")?;
            o.set("hostname", name);
            (o, Registration::Created)
        }
        Err(e) => return Err(e.into()),
    };
    object.set("libvirt_uri", uri);
    client.commit(&commit_of([&object]))?;
    Ok(outcome)
}

/// Keeps the inventory objects of one hypervisor's VMs equal to what
/// libvirt says about them.
pub struct Recorder {
    client: Client,
    hypervisor: String,
}

impl Recorder {
    /// `hypervisor` is the inventory name of the host the VMs run on.
    pub fn new(client: Client, hypervisor: String) -> Recorder {
        Recorder { client, hypervisor }
    }

    /// Create or update the VM's object from what libvirt says; commit
    /// only what differs.
    pub fn record(&self, d: &DomainFacts) -> Result<(), FleetError> {
        let mut object = match self.client.get(&d.name) {
            Ok(o) => o,
            Err(ClientError::NotFound { .. }) => {
                let mut o = self.client.new_object("vm")?;
                o.set("hostname", d.name.as_str());
                o
            }
            Err(e) => return Err(e.into()),
        };
        for (attribute, value) in drift::vm_attributes(d, &self.hypervisor) {
            if object.get(attribute) != Some(&value) {
                object.set(attribute, value);
            }
        }
        if object.is_dirty() {
            self.commit(&d.name, &object)?;
        }
        Ok(())
    }

    /// Delete the VM's object; nothing to do when there is none.
    pub fn forget(&self, name: &str) -> Result<(), FleetError> {
        match self.client.get(name) {
            Ok(mut o) => {
                o.delete();
                self.commit(name, &o)
            }
            Err(ClientError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn commit(&self, vm: &str, object: &TrackedObject) -> Result<(), FleetError> {
        self.client
            .commit(&commit_of([object]))
            .map(|_| ())
            .map_err(|source| FleetError::NotRecorded {
                vm: vm.to_string(),
                source,
            })
    }
}

/// Apply the repairs of `found`: create unrecorded VMs and set changed
/// attributes, one commit per VM. Vanished VMs are left alone.
pub fn repair(client: &Client, observed: &[Observed], found: &[Drift]) -> Result<(), FleetError> {
    for (hypervisor, d) in drift::to_record(observed, found) {
        Recorder::new(client.clone(), hypervisor.to_string()).record(d)?;
    }
    Ok(())
}

/// herd-migrate's inventory step: at the end of a migration, set the VM's
/// `hypervisor` with compare-and-swap against the object read before it.
pub struct MoveVm {
    client: Client,
    object: TrackedObject,
}

impl MoveVm {
    /// `object` is the VM's inventory object, read before the migration.
    pub fn new(client: Client, object: TrackedObject) -> MoveVm {
        MoveVm { client, object }
    }
}

impl herd_migrate::exec::Inventory for MoveVm {
    fn move_vm(&mut self, _vm: &str, from: &str, to: &str) -> Result<(), String> {
        if recorded_hypervisor(&self.object).as_deref() != Some(from) {
            return Err(format!("the inventory does not say {from}"));
        }
        let mut object = self.object.clone();
        object.set("hypervisor", to);
        self.client
            .commit(&commit_of([&object]))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn with_uris(objects: &[TrackedObject]) -> Vec<Hv> {
    objects
        .iter()
        .filter_map(|o| {
            Some(Hv {
                name: o.hostname()?.to_string(),
                uri: string(o.get("libvirt_uri"))?,
            })
        })
        .collect()
}

/// A non-empty string value.
fn string(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}
