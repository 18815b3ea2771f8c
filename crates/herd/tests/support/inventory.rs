//! The `inventory_*` tests' fixtures: a small schema and a fleet of
//! hypervisors and VMs loaded through `herd-client`.

use herd_client::{Client, SchemaChange};

/// A small schema: hypervisors, VMs (with a relation to their hypervisor, a
/// multi attribute and a regexp), routers and networks.
pub fn fleet_schema() -> Vec<SchemaChange> {
    let json = serde_json::json!([
        {"action": "create_attribute", "attribute": {"attribute_id": "memory", "type": "number"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "num_cpu", "type": "number"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "os", "type": "string", "regexp": "^[a-z]+$"}},
        {"action": "create_attribute", "attribute": {"attribute_id": "tags", "type": "string", "multi": true}},
        {"action": "create_servertype", "servertype": {"servertype_id": "hypervisor", "ip_addr_type": "host",
            "attributes": [{"attribute_id": "num_cpu"}, {"attribute_id": "memory"}]}},
        {"action": "create_attribute", "attribute": {"attribute_id": "hypervisor", "type": "relation", "target_servertype": "hypervisor"}},
        {"action": "create_servertype", "servertype": {"servertype_id": "vm", "ip_addr_type": "host",
            "attributes": [{"attribute_id": "hypervisor"}, {"attribute_id": "memory", "default_value": 1024},
                           {"attribute_id": "num_cpu"}, {"attribute_id": "os"}, {"attribute_id": "tags"}]}},
    ]);
    serde_json::from_value(json).expect("fixture schema parses")
}

/// Apply the fixture schema and create `hypervisors` hypervisors `hv1..`
/// and `vms` VMs `vm1..` spread over them.
pub fn load_fleet(client: &Client, hypervisors: usize, vms: usize) {
    client.change_schema(&fleet_schema()).expect("schema");
    let mut commit = herd_client::Commit::default();
    for i in 1..=hypervisors {
        commit.created.push(object(serde_json::json!({
            "hostname": format!("hv{i}"), "servertype": "hypervisor",
            "intern_ip": format!("10.0.0.{i}"), "num_cpu": 32, "memory": 262144
        })));
    }
    for i in 1..=vms {
        commit.created.push(object(serde_json::json!({
            "hostname": format!("vm{i}"), "servertype": "vm",
            "intern_ip": format!("10.1.{}.{}", i / 250, i % 250 + 1),
            "hypervisor": format!("hv{}", i % hypervisors.max(1) + 1),
            "memory": 2048, "num_cpu": 2, "os": "bookworm", "tags": ["web"]
        })));
    }
    client.commit(&commit).expect("fleet");
}

pub fn object(json: serde_json::Value) -> herd_client::Object {
    serde_json::from_value(json).expect("object")
}
