//! The engine-independent test story. Every engine runs it from its own
//! tests with [`conformance_tests!`](crate::conformance_tests), giving a
//! factory for a fresh, empty store:
//!
//! ```text
//! herd_store::conformance_tests!(|| std::sync::Arc::new(MyStore::temporary()));
//! ```
//!
//! Each case is a `pub fn(&Factory)` that panics on failure.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use herd_model::{
    parse_query, Attribute, AttributeChange, AttributeType, Change, ChangeKind, Commit, InetFamily,
    IpAddrType, Object, ObjectId, Query, Restrict, SchemaChange, Servertype, ServertypeAttribute,
    Value,
};

use crate::{Store, StoreError};

/// Makes a fresh, empty store.
pub type Factory = dyn Fn() -> Arc<dyn Store>;

/// Expands to one `#[test]` per conformance case.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@cases $factory;
            schema_changes_are_validated_and_persisted,
            new_object_template_has_defaults,
            created_objects_are_returned_with_all_attributes,
            filters_work_on_every_type,
            json_and_text_queries_agree,
            restrict_joins_relations,
            query_json_is_the_query_serialized,
            order_by_sorts_then_object_id,
            computed_attributes_follow_their_sources,
            query_errors_are_validation_errors,
            commit_with_stale_old_value_is_refused_whole,
            multi_add_and_remove,
            no_lost_update_between_concurrent_writers,
            validation_rules_name_object_attribute_and_rule,
            deleting_a_referenced_object_is_refused,
            history_records_every_commit,
            servertype_update_drops_removed_attribute_values,
            schema_batch_refused_at_its_last_change_changes_nothing,
            schema_batch_applies_whole_and_is_recorded,
            schema_rules_refuse_alike,
            schema_type_change_without_values_is_accepted,
        );
    };
    (@cases $factory:expr; $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                let factory = $factory;
                $crate::conformance::$case(&factory);
            }
        )*
    };
}

fn attr(id: &str, ty: AttributeType) -> Attribute {
    Attribute::new(id, ty)
}

fn st(id: &str, ip: IpAddrType, attrs: &[&str]) -> Servertype {
    let mut s = Servertype::new(id, ip);
    s.attributes = attrs.iter().map(|a| ServertypeAttribute::new(a)).collect();
    s
}

fn schema_change(store: &dyn Store, change: SchemaChange) {
    store
        .change_schema(std::slice::from_ref(&change), "fixture")
        .unwrap_or_else(|e| panic!("{change:?}: {e}"));
}

/// The fixture schema: networks, a domain, hypervisors and VMs with one
/// attribute of every type.
pub fn fixture_schema(store: &dyn Store) {
    use AttributeType as T;
    for s in [
        st("route_network", IpAddrType::Network, &[]),
        st("vlan_network", IpAddrType::Network, &[]),
        st("domain", IpAddrType::Null, &[]),
    ] {
        schema_change(store, SchemaChange::CreateServertype { servertype: s });
    }
    let mut os = attr("os", T::String);
    os.regexp = Some("\\A[a-z]+\\Z".into());
    let mut tags = attr("tags", T::String);
    tags.multi = true;
    let mut ip6 = attr("ip6", T::Inet);
    ip6.inet_address_family = Some(InetFamily::Ipv6);
    let mut serial = attr("serial", T::String);
    serial.readonly = true;
    for a in [
        os,
        tags,
        ip6,
        serial,
        attr("num_cpu", T::Number),
        attr("backup", T::Boolean),
        attr("mac", T::Macaddr),
        attr("installed", T::Date),
        attr("seen", T::Datetime),
        attr("owner", T::String),
        attr("dc", T::String),
    ] {
        schema_change(store, SchemaChange::CreateAttribute { attribute: a });
    }
    let mut network = attr("network", T::Supernet);
    network.target_servertype = Some("route_network".into());
    let mut zone = attr("zone", T::Domain);
    zone.target_servertype = Some("domain".into());
    schema_change(store, SchemaChange::CreateAttribute { attribute: network });
    schema_change(store, SchemaChange::CreateAttribute { attribute: zone });
    schema_change(
        store,
        SchemaChange::CreateServertype {
            servertype: st(
                "hypervisor",
                IpAddrType::Host,
                &["dc", "num_cpu", "tags", "zone"],
            ),
        },
    );
    let mut hv = attr("hypervisor", T::Relation);
    hv.target_servertype = Some("hypervisor".into());
    schema_change(store, SchemaChange::CreateAttribute { attribute: hv });
    let mut vms = attr("vms", T::Reverse);
    vms.reversed_attribute = Some("hypervisor".into());
    schema_change(store, SchemaChange::CreateAttribute { attribute: vms });
    let mut hyp = st(
        "hypervisor",
        IpAddrType::Host,
        &["dc", "num_cpu", "tags", "zone", "vms"],
    );
    hyp.description = "KVM hypervisor".into();
    schema_change(store, SchemaChange::UpdateServertype { servertype: hyp });
    let mut vm = st(
        "vm",
        IpAddrType::Host,
        &[
            "hypervisor",
            "os",
            "tags",
            "ip6",
            "serial",
            "num_cpu",
            "backup",
            "mac",
            "installed",
            "seen",
            "owner",
            "dc",
            "network",
            "zone",
        ],
    );
    for sa in &mut vm.attributes {
        match sa.attribute_id.as_str() {
            "owner" => sa.required = true,
            "backup" => sa.default_value = Some(Value::Bool(true)),
            "dc" => sa.related_via_attribute = Some("hypervisor".into()),
            _ => {}
        }
    }
    schema_change(store, SchemaChange::CreateServertype { servertype: vm });
    schema_change(
        store,
        SchemaChange::CreateServertype {
            servertype: st("lb", IpAddrType::Loadbalancer, &[]),
        },
    );
}

fn obj(json: serde_json::Value) -> Object {
    serde_json::from_value(json).expect("fixture object")
}

fn commit_created(store: &dyn Store, objects: Vec<Object>) {
    let commit = Commit {
        created: objects,
        ..Commit::default()
    };
    store
        .commit(&commit, "fixture")
        .unwrap_or_else(|e| panic!("fixture commit: {e}"));
}

/// Schema plus networks, a domain, two hypervisors and three VMs.
pub fn fixture(store: &dyn Store) {
    use serde_json::json;
    fixture_schema(store);
    commit_created(
        store,
        vec![
            obj(
                json!({"hostname": "net1", "servertype": "route_network", "intern_ip": "10.0.0.0/16"}),
            ),
            obj(
                json!({"hostname": "vlan1", "servertype": "vlan_network", "intern_ip": "10.0.1.0/24"}),
            ),
            obj(json!({"hostname": "example.com", "servertype": "domain"})),
            obj(
                json!({"hostname": "hv1.example.com", "servertype": "hypervisor", "intern_ip": "10.0.0.10",
                       "dc": "ams", "num_cpu": 64, "tags": ["kvm"]}),
            ),
            obj(
                json!({"hostname": "hv2.example.com", "servertype": "hypervisor", "intern_ip": "10.0.0.11",
                       "dc": "fra", "num_cpu": 32}),
            ),
        ],
    );
    commit_created(
        store,
        vec![
            obj(
                json!({"hostname": "vm1.example.com", "servertype": "vm", "intern_ip": "10.0.2.1",
                "hypervisor": "hv1.example.com", "os": "bookworm", "num_cpu": 4, "backup": true,
                "ip6": "2001:db8::1", "mac": "52:54:00:00:00:01", "installed": "2020-01-01",
                "seen": "2024-01-01T10:00:00Z", "tags": ["web", "prod"], "owner": "alice", "serial": "s1"}),
            ),
            obj(
                json!({"hostname": "vm2.example.com", "servertype": "vm", "intern_ip": "10.0.1.5",
                "hypervisor": "hv1.example.com", "os": "bullseye", "num_cpu": 8, "backup": false,
                "ip6": "2001:db8::2", "mac": "52:54:00:00:00:02", "installed": "2021-06-15",
                "seen": "2024-06-01T00:00:00+02:00", "tags": ["db"], "owner": "bob"}),
            ),
            obj(
                json!({"hostname": "vm3.other", "servertype": "vm", "intern_ip": "10.1.0.1",
                "hypervisor": "hv2.example.com", "num_cpu": 16, "owner": "carol", "backup": false}),
            ),
        ],
    );
}

fn hostnames(objects: &[Object]) -> Vec<String> {
    let mut v: Vec<String> = objects
        .iter()
        .map(|o| o.hostname().unwrap_or_default().to_owned())
        .collect();
    v.sort();
    v
}

fn query_text(store: &dyn Store, text: &str) -> Vec<String> {
    let q = parse_query(text).unwrap_or_else(|e| panic!("{}", e.render(text)));
    hostnames(&store.query(&q).unwrap_or_else(|e| panic!("{text}: {e}")))
}

fn get(store: &dyn Store, hostname: &str) -> Object {
    let mut found = store
        .query(&Query::filter(
            "hostname",
            herd_model::Filter::Equals(hostname.into()),
        ))
        .expect("query by hostname");
    assert_eq!(found.len(), 1, "{hostname} should exist once");
    found.remove(0)
}

fn id_of(store: &dyn Store, hostname: &str) -> ObjectId {
    get(store, hostname).object_id().expect("object_id")
}

fn validation(result: Result<i64, StoreError>) -> crate::ValidationError {
    match result {
        Err(StoreError::Validation(v)) => v,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

pub fn schema_changes_are_validated_and_persisted(factory: &Factory) {
    let store = factory();
    fixture_schema(&*store);
    let schema = store.schema().unwrap();
    assert_eq!(
        schema.attributes["os"].regexp.as_deref(),
        Some("\\A[a-z]+\\Z")
    );
    assert_eq!(
        schema.servertypes["hypervisor"].description,
        "KVM hypervisor"
    );
    assert_eq!(
        schema.servertypes["vm"]
            .attribute("dc")
            .unwrap()
            .related_via_attribute
            .as_deref(),
        Some("hypervisor")
    );
    let refused = [
        SchemaChange::CreateAttribute {
            attribute: attr("os", AttributeType::String),
        },
        SchemaChange::CreateAttribute {
            attribute: attr("Bad Name", AttributeType::String),
        },
        SchemaChange::CreateAttribute {
            attribute: attr("hostname", AttributeType::String),
        },
        SchemaChange::DeleteAttribute {
            attribute_id: "os".into(),
        },
        SchemaChange::CreateServertype {
            servertype: st("x", IpAddrType::Host, &["nope"]),
        },
        SchemaChange::CreateAttribute {
            attribute: Attribute {
                regexp: Some("[".into()),
                ..attr("broken", AttributeType::String)
            },
        },
        SchemaChange::CreateAttribute {
            attribute: attr("sn", AttributeType::Supernet),
        },
    ];
    for change in refused {
        assert!(
            matches!(
                store.change_schema(std::slice::from_ref(&change), "test"),
                Err(StoreError::Validation(_))
            ),
            "{change:?} should be refused"
        );
    }
    assert!(matches!(
        store.change_schema(
            &[SchemaChange::DeleteServertype {
                servertype_id: "nope".into()
            }],
            "test"
        ),
        Err(StoreError::NotFound(_))
    ));
    schema_change(
        &*store,
        SchemaChange::CreateAttribute {
            attribute: attr("spare", AttributeType::Number),
        },
    );
    schema_change(
        &*store,
        SchemaChange::DeleteAttribute {
            attribute_id: "spare".into(),
        },
    );
    assert!(!store.schema().unwrap().attributes.contains_key("spare"));
}

pub fn new_object_template_has_defaults(factory: &Factory) {
    let store = factory();
    fixture_schema(&*store);
    let t = store.new_object("vm").unwrap();
    assert_eq!(t.get("backup"), Some(&Value::Bool(true)));
    assert_eq!(t.get("tags"), Some(&Value::Set(vec![])));
    assert_eq!(t.get("hostname"), Some(&Value::Null));
    assert_eq!(t.get("servertype"), Some(&Value::from("vm")));
    assert!(matches!(
        store.new_object("nope"),
        Err(StoreError::NotFound(_))
    ));
    // A filled-in template commits as is (computed attributes left null).
    let mut t = t;
    t.fields.insert("hostname".into(), "fresh".into());
    t.fields.insert("intern_ip".into(), "192.168.0.1".into());
    t.fields.insert("owner".into(), "dora".into());
    commit_created(&*store, vec![t]);
    assert_eq!(
        get(&*store, "fresh").get("backup"),
        Some(&Value::Bool(true))
    );
}

pub fn created_objects_are_returned_with_all_attributes(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let vm1 = get(&*store, "vm1.example.com");
    let f = |k: &str| {
        vm1.get(k)
            .cloned()
            .unwrap_or_else(|| panic!("vm1 lacks {k}"))
    };
    assert_eq!(f("servertype"), Value::from("vm"));
    assert_eq!(f("intern_ip").to_text(), "10.0.2.1");
    assert_eq!(f("hypervisor"), Value::from("hv1.example.com"));
    assert_eq!(f("num_cpu"), Value::number(4));
    assert_eq!(f("backup"), Value::Bool(true));
    assert_eq!(f("mac").to_text(), "52:54:00:00:00:01");
    assert_eq!(f("installed").to_text(), "2020-01-01");
    assert_eq!(f("seen").to_text(), "2024-01-01T10:00:00+00:00");
    assert_eq!(f("tags"), Value::set(vec!["prod".into(), "web".into()]));
    assert_eq!(f("dc"), Value::from("ams"));
    assert_eq!(f("network"), Value::from("net1"));
    assert_eq!(f("zone"), Value::from("example.com"));
    let json = serde_json::to_value(&vm1).unwrap();
    assert_eq!(json["intern_ip"], "10.0.2.1");
    assert_eq!(json["seen"], "2024-01-01T10:00:00+00:00");
    assert!(json["object_id"].is_i64());
}

/// (text query, expected hostnames) on the fixture.
pub const FILTER_CASES: &[(&str, &[&str])] = &[
    // string
    ("servertype=vm os=bookworm", &["vm1.example.com"]),
    (
        "servertype=vm os=Any(bookworm bullseye)",
        &["vm1.example.com", "vm2.example.com"],
    ),
    (
        "servertype=vm os=Not(bookworm)",
        &["vm2.example.com", "vm3.other"],
    ),
    ("servertype=vm os=Empty()", &["vm3.other"]),
    (
        "servertype=vm os=Not(Empty())",
        &["vm1.example.com", "vm2.example.com"],
    ),
    ("servertype=vm os=Regexp(^bull)", &["vm2.example.com"]),
    ("servertype=vm os=Regexp(worm)", &["vm1.example.com"]),
    ("servertype=vm os=StartsWith(book)", &["vm1.example.com"]),
    ("servertype=vm os=Contains(llsey)", &["vm2.example.com"]),
    (
        "servertype=vm os=ContainedBy(xbookwormx)",
        &["vm1.example.com"],
    ),
    (
        "servertype=vm os=GreaterThan(bookworm)",
        &["vm2.example.com"],
    ),
    (
        "servertype=vm os=LessThanOrEquals(bookworm)",
        &["vm1.example.com"],
    ),
    // number
    ("servertype=vm num_cpu=8", &["vm2.example.com"]),
    (
        "servertype=vm num_cpu=GreaterThan(4)",
        &["vm2.example.com", "vm3.other"],
    ),
    (
        "servertype=vm num_cpu=GreaterThanOrEquals(8)",
        &["vm2.example.com", "vm3.other"],
    ),
    ("servertype=vm num_cpu=LessThan(8)", &["vm1.example.com"]),
    (
        "servertype=vm num_cpu=LessThanOrEquals(8)",
        &["vm1.example.com", "vm2.example.com"],
    ),
    (
        "servertype=vm num_cpu=All(GreaterThan(4) LessThan(16))",
        &["vm2.example.com"],
    ),
    ("servertype=vm num_cpu=Regexp(^1)", &["vm3.other"]),
    // boolean
    ("servertype=vm backup=true", &["vm1.example.com"]),
    (
        "servertype=vm backup=Not(true)",
        &["vm2.example.com", "vm3.other"],
    ),
    // inet
    ("intern_ip=10.0.2.1", &["vm1.example.com"]),
    (
        "servertype=vm intern_ip=ContainedBy(10.0.0.0/16)",
        &["vm1.example.com", "vm2.example.com"],
    ),
    (
        "intern_ip=ContainedOnlyBy(10.0.0.0/16)",
        &[
            "hv1.example.com",
            "hv2.example.com",
            "net1",
            "vlan1",
            "vm1.example.com",
        ],
    ),
    (
        "intern_ip=ContainedOnlyBy(10.0.1.0/24)",
        &["vlan1", "vm2.example.com"],
    ),
    (
        "intern_ip=ContainedBy(10.0.1.0/24)",
        &["vlan1", "vm2.example.com"],
    ),
    ("intern_ip=Contains(10.0.1.7)", &["net1", "vlan1"]),
    ("intern_ip=Overlaps(10.0.1.128/25)", &["net1", "vlan1"]),
    (
        "intern_ip=Overlaps(10.0.1.0/25)",
        &["net1", "vlan1", "vm2.example.com"],
    ),
    (
        "servertype=vm intern_ip=GreaterThan(10.0.2.0)",
        &["vm1.example.com", "vm3.other"],
    ),
    (
        "intern_ip=StartsWith(10.0.0.)",
        &["hv1.example.com", "hv2.example.com", "net1"],
    ),
    (
        "servertype=vm ip6=ContainedBy(2001:db8::/120)",
        &["vm1.example.com", "vm2.example.com"],
    ),
    ("servertype=vm ip6=2001:db8::2", &["vm2.example.com"]),
    // macaddr
    ("servertype=vm mac=52:54:00:00:00:02", &["vm2.example.com"]),
    (
        "servertype=vm mac=GreaterThan(52:54:00:00:00:01)",
        &["vm2.example.com"],
    ),
    ("servertype=vm mac=Empty()", &["vm3.other"]),
    // date / datetime
    (
        "servertype=vm installed=GreaterThan(2020-06-01)",
        &["vm2.example.com"],
    ),
    ("servertype=vm installed=2020-01-01", &["vm1.example.com"]),
    (
        "servertype=vm seen=LessThan(2024-05-31T23:00:00Z)",
        &["vm1.example.com", "vm2.example.com"],
    ),
    (
        "servertype=vm seen=2024-05-31T22:00:00Z",
        &["vm2.example.com"],
    ),
    // relation, reverse, supernet, domain, related via
    (
        "hypervisor=hv1.example.com",
        &["vm1.example.com", "vm2.example.com"],
    ),
    ("hypervisor=Regexp(^hv2)", &["vm3.other"]),
    ("hypervisor=Any(hv2.example.com nothere)", &["vm3.other"]),
    (
        "servertype=vm hypervisor=StartsWith(hv1)",
        &["vm1.example.com", "vm2.example.com"],
    ),
    ("vms=vm3.other", &["hv2.example.com"]),
    ("servertype=hypervisor vms=Empty()", &[]),
    ("network=net1", &["vm1.example.com", "vm2.example.com"]),
    ("servertype=vm network=Empty()", &["vm3.other"]),
    (
        "zone=example.com",
        &[
            "hv1.example.com",
            "hv2.example.com",
            "vm1.example.com",
            "vm2.example.com",
        ],
    ),
    (
        "servertype=vm dc=ams",
        &["vm1.example.com", "vm2.example.com"],
    ),
    ("dc=fra", &["hv2.example.com", "vm3.other"]),
    // multi
    ("tags=web", &["vm1.example.com"]),
    ("tags=Any(db kvm)", &["hv1.example.com", "vm2.example.com"]),
    ("tags=All(web prod)", &["vm1.example.com"]),
    (
        "servertype=vm tags=Not(web)",
        &["vm2.example.com", "vm3.other"],
    ),
    ("servertype=vm tags=Empty()", &["vm3.other"]),
    ("tags=StartsWith(pr)", &["vm1.example.com"]),
    // special attributes, hostname forms
    ("vm1.example.com", &["vm1.example.com"]),
    ("vm.\\.example.*", &["vm1.example.com", "vm2.example.com"]),
    (
        "hostname=Regexp(^vm[23])",
        &["vm2.example.com", "vm3.other"],
    ),
    (
        "hostname=StartsWith(hv)",
        &["hv1.example.com", "hv2.example.com"],
    ),
    (
        "servertype=Any(route_network vlan_network)",
        &["net1", "vlan1"],
    ),
    ("hostname=nothere", &[]),
];

pub fn filters_work_on_every_type(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let mut failures = Vec::new();
    for (text, expected) in FILTER_CASES {
        let got = query_text(&*store, text);
        if got != *expected {
            failures.push(format!("{text}: expected {expected:?}, got {got:?}"));
        }
    }
    let id = id_of(&*store, "vm2.example.com");
    let by_id = store
        .query(&Query::filter(
            "object_id",
            herd_model::Filter::Equals(Value::number(id)),
        ))
        .unwrap();
    if hostnames(&by_id) != ["vm2.example.com"] {
        failures.push(format!("object_id={id}: got {:?}", hostnames(&by_id)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

pub fn json_and_text_queries_agree(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let json: Query = serde_json::from_str(
        r#"{"filters": {"servertype": "vm", "num_cpu": {"Any": [4, {"GreaterThan": 10}]},
            "os": {"Not": {"Empty": null}}}, "restrict": null, "order_by": null}"#,
    )
    .unwrap();
    let text = parse_query("servertype=vm num_cpu=Any(4 GreaterThan(10)) os=Not(Empty())").unwrap();
    let a = store.query(&json).unwrap();
    assert_eq!(hostnames(&a), ["vm1.example.com"]);
    assert_eq!(a, store.query(&text).unwrap());
    // Strings in JSON are typed against the schema.
    let typed: Query = serde_json::from_str(
        r#"{"filters": {"num_cpu": "8", "backup": "false", "servertype": "vm"}}"#,
    )
    .unwrap();
    assert_eq!(
        hostnames(&store.query(&typed).unwrap()),
        ["vm2.example.com"]
    );
}

pub fn restrict_joins_relations(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let q: Query = serde_json::from_str(
        r#"{"filters": {"hostname": "vm1.example.com"},
            "restrict": ["hostname", {"hypervisor": ["hostname", "num_cpu", {"vms": ["hostname"]}]}]}"#,
    )
    .unwrap();
    let got = serde_json::to_value(store.query(&q).unwrap()).unwrap();
    let hv1 = id_of(&*store, "hv1.example.com");
    let vm1 = id_of(&*store, "vm1.example.com");
    let vm2 = id_of(&*store, "vm2.example.com");
    assert_eq!(
        got,
        serde_json::json!([{
            "object_id": vm1,
            "hostname": "vm1.example.com",
            "hypervisor": {"object_id": hv1, "hostname": "hv1.example.com", "num_cpu": 64,
                "vms": [{"object_id": vm1, "hostname": "vm1.example.com"},
                        {"object_id": vm2, "hostname": "vm2.example.com"}]}
        }])
    );
    let q = Query {
        restrict: Some(vec![Restrict::Attribute("os".into())]),
        ..parse_query("servertype=vm num_cpu=16").unwrap()
    };
    let got = store.query(&q).unwrap();
    assert_eq!(got[0].get("os"), Some(&Value::Null));
    assert_eq!(got[0].fields.len(), 2, "object_id and os only: {got:?}");
}

/// `query_json` (which engines may write directly) is byte for byte the
/// serialized answer of `query`, for every shape an answer can take.
pub fn query_json_is_the_query_serialized(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    // A value that needs escaping, and a VM on no hypervisor.
    commit_created(
        &*store,
        vec![obj(
            serde_json::json!({"hostname": "vm4.example.com", "servertype": "vm",
            "intern_ip": "10.0.3.1", "owner": "d\"o\\e \u{e9}\n\u{1}", "tags": ["z", "a"]}),
        )],
    );
    let queries = [
        r#"{"filters": {}}"#,
        r#"{"filters": {}, "restrict": ["hostname", "servertype", "intern_ip", "object_id"]}"#,
        r#"{"filters": {"servertype": "vm"}, "restrict": ["owner", "owner", "tags", "network", "zone", "dc"]}"#,
        r#"{"filters": {}, "restrict": [{"hypervisor": ["hostname", "num_cpu"]}, "os"]}"#,
        r#"{"filters": {}, "restrict": ["hypervisor", {"hypervisor": ["hostname", {"vms": ["hostname", "owner"]}]}]}"#,
        r#"{"filters": {"servertype": "hypervisor"}, "restrict": [{"vms": ["hostname", {"hypervisor": ["dc"]}]}, "vms"]}"#,
        r#"{"filters": {"hostname": {"Regexp": "^vm"}}, "restrict": ["hostname", "ip6", "mac", "installed", "seen", "backup"], "order_by": ["owner"]}"#,
        r#"{"filters": {"hostname": "nothing.example.com"}}"#,
        r#"{"filters": {"servertype": "vm"}, "restrict": [{"hostname": ["os"]}, {"dc": ["hostname"]}]}"#,
        r#"{"filters": {}, "restrict": [{"network": ["hostname"]}, {"zone": ["hostname"]}, "network", "zone"], "order_by": ["hostname"]}"#,
    ];
    for text in queries {
        let q: Query = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let objects = match store.query(&q) {
            Ok(objects) => objects,
            Err(e) => {
                assert!(
                    store.query_json(&q).is_err(),
                    "{text}: query fails ({e}), query_json not"
                );
                continue;
            }
        };
        let expected = serde_json::to_vec(&objects).expect("serializable");
        let got = store
            .query_json(&q)
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "query_json differs from query for {text}"
        );
    }
    let bad: Query = serde_json::from_str(r#"{"filters": {"no_such": 1}}"#).unwrap();
    assert!(matches!(
        store.query_json(&bad),
        Err(StoreError::Validation(_))
    ));
}

pub fn order_by_sorts_then_object_id(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let q = Query {
        order_by: vec!["num_cpu".into()],
        ..parse_query("servertype=Any(vm hypervisor)").unwrap()
    };
    assert_eq!(
        store
            .query(&q)
            .unwrap()
            .iter()
            .map(|o| o.hostname().unwrap().to_owned())
            .collect::<Vec<_>>(),
        [
            "vm1.example.com",
            "vm2.example.com",
            "vm3.other",
            "hv2.example.com",
            "hv1.example.com"
        ]
    );
    let ids: Vec<ObjectId> = store
        .query(&parse_query("servertype=vm").unwrap())
        .unwrap()
        .iter()
        .filter_map(Object::object_id)
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "without order_by, results come by object_id");
}

pub fn computed_attributes_follow_their_sources(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let vm3 = id_of(&*store, "vm3.other");
    // Move vm3 to hv1: reverse and related-via attributes follow.
    store
        .commit(
            &Commit {
                changed: vec![Change::new(vm3).update(
                    "hypervisor",
                    "hv2.example.com".into(),
                    "hv1.example.com".into(),
                )],
                ..Commit::default()
            },
            "test",
        )
        .unwrap();
    assert_eq!(
        get(&*store, "vm3.other").get("dc"),
        Some(&Value::from("ams"))
    );
    assert_eq!(
        get(&*store, "hv1.example.com").get("vms"),
        Some(&Value::set(vec![
            "vm1.example.com".into(),
            "vm2.example.com".into(),
            "vm3.other".into()
        ]))
    );
    assert_eq!(
        get(&*store, "hv2.example.com").get("vms"),
        Some(&Value::Set(vec![]))
    );
    // Renaming the hypervisor shows through the relation (stored by id).
    let hv1 = id_of(&*store, "hv1.example.com");
    store
        .commit(
            &Commit {
                changed: vec![Change::new(hv1).update(
                    "hostname",
                    "hv1.example.com".into(),
                    "hv9.example.com".into(),
                )],
                ..Commit::default()
            },
            "test",
        )
        .unwrap();
    assert_eq!(
        get(&*store, "vm1.example.com").get("hypervisor"),
        Some(&Value::from("hv9.example.com"))
    );
    // Computed attributes can not be written.
    let v = validation(store.commit(
        &Commit {
            changed: vec![Change::new(vm3).update("dc", "ams".into(), "fra".into())],
            ..Commit::default()
        },
        "test",
    ));
    assert_eq!((v.rule, v.attribute.as_deref()), ("readonly", Some("dc")));
}

pub fn query_errors_are_validation_errors(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    for text in [
        "nope=1",
        "backup=GreaterThan(1)",
        "num_cpu=abc",
        "os=Regexp([)",
        "num_cpu=Overlaps(1)",
        "os=ContainedOnlyBy(10.0.0.0/8)",
    ] {
        let q = parse_query(text).unwrap();
        match store.query(&q) {
            Err(StoreError::Validation(v)) => assert!(!v.message.is_empty(), "{text}"),
            other => panic!("{text}: expected a validation error, got {other:?}"),
        }
    }
    let q = Query {
        restrict: Some(vec![Restrict::Related {
            attribute: "os".into(),
            restrict: vec![],
        }]),
        ..Query::default()
    };
    assert!(matches!(store.query(&q), Err(StoreError::Validation(_))));
}

pub fn commit_with_stale_old_value_is_refused_whole(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let vm1 = id_of(&*store, "vm1.example.com");
    let vm2 = id_of(&*store, "vm2.example.com");
    let stale = Commit {
        changed: vec![
            Change::new(vm2).update("num_cpu", Value::number(8), Value::number(9)),
            Change::new(vm1).update("num_cpu", Value::number(3), Value::number(5)),
        ],
        created: vec![obj(
            serde_json::json!({"hostname": "vm9", "servertype": "vm",
            "intern_ip": "10.9.9.9", "hypervisor": "hv1.example.com", "owner": "x"}),
        )],
        ..Commit::default()
    };
    match store.commit(&stale, "test") {
        Err(StoreError::Conflict(m)) => {
            assert!(
                m.contains("vm1.example.com") && m.contains("num_cpu"),
                "{m}"
            )
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        get(&*store, "vm2.example.com").get("num_cpu"),
        Some(&Value::number(8))
    );
    assert!(query_text(&*store, "hostname=vm9").is_empty());
    // Old values are compared after typing: "4" equals 4.
    let ok = Commit {
        changed: vec![Change::new(vm1).update("num_cpu", "4".into(), Value::number(6))],
        ..Commit::default()
    };
    store.commit(&ok, "test").unwrap();
    assert_eq!(
        get(&*store, "vm1.example.com").get("num_cpu"),
        Some(&Value::number(6))
    );
    // Deleting an object twice: the second is stale.
    let del = Commit {
        deleted: vec![vm2],
        ..Commit::default()
    };
    store.commit(&del, "test").unwrap();
    assert!(matches!(
        store.commit(&del, "test"),
        Err(StoreError::Conflict(_))
    ));
}

pub fn multi_add_and_remove(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let vm1 = id_of(&*store, "vm1.example.com");
    let c = Commit {
        changed: vec![Change::new(vm1).multi(
            "tags",
            vec!["new".into(), "web".into()],
            vec!["prod".into(), "absent".into()],
        )],
        ..Commit::default()
    };
    store.commit(&c, "test").unwrap();
    assert_eq!(
        get(&*store, "vm1.example.com").get("tags"),
        Some(&Value::set(vec!["new".into(), "web".into()]))
    );
    let v = validation(store.commit(
        &Commit {
            changed: vec![Change::new(vm1).multi("os", vec!["x".into()], vec![])],
            ..Commit::default()
        },
        "test",
    ));
    assert_eq!(v.rule, "multi");
}

/// Two writers commit against the same `old` value, many rounds: exactly
/// one wins each round, and the final state is exactly the winners'.
pub fn no_lost_update_between_concurrent_writers(factory: &Factory) {
    const ROUNDS: i64 = 200;
    let store = factory();
    fixture(&*store);
    let vm1 = id_of(&*store, "vm1.example.com");
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|me| {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut wins = Vec::new();
                for round in 0..ROUNDS {
                    let seen = get(&*store, "vm1.example.com")
                        .get("num_cpu")
                        .cloned()
                        .unwrap_or(Value::Null);
                    assert_eq!(
                        seen,
                        Value::number(4 + round),
                        "both writers see the last round's result"
                    );
                    barrier.wait();
                    let c = Commit {
                        changed: vec![Change::new(vm1)
                            .update("num_cpu", seen, Value::number(5 + round))
                            .multi("tags", vec![format!("{me}{round}").into()], vec![])],
                        ..Commit::default()
                    };
                    match store.commit(&c, me) {
                        Ok(_) => wins.push(round),
                        Err(StoreError::Conflict(_)) => {}
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                    barrier.wait();
                }
                wins
            })
        })
        .collect();
    let wins: Vec<Vec<i64>> = writers
        .into_iter()
        .map(|w| w.join().expect("writer thread"))
        .collect();
    let a: BTreeSet<i64> = wins[0].iter().copied().collect();
    let b: BTreeSet<i64> = wins[1].iter().copied().collect();
    assert_eq!(
        a.len() + b.len(),
        ROUNDS as usize,
        "exactly one winner per round"
    );
    assert!(a.is_disjoint(&b));
    let vm = get(&*store, "vm1.example.com");
    assert_eq!(vm.get("num_cpu"), Some(&Value::number(4 + ROUNDS)));
    let mut expected: Vec<Value> = vec!["prod".into(), "web".into()];
    expected.extend(a.iter().map(|r| Value::from(format!("a{r}"))));
    expected.extend(b.iter().map(|r| Value::from(format!("b{r}"))));
    assert_eq!(vm.get("tags"), Some(&Value::set(expected)));
    let history = store.object_history(vm1).unwrap();
    assert_eq!(
        history.len(),
        1 + ROUNDS as usize,
        "creation plus one entry per winner"
    );
}

pub fn validation_rules_name_object_attribute_and_rule(factory: &Factory) {
    use serde_json::json;
    let store = factory();
    fixture(&*store);
    let vm1 = id_of(&*store, "vm1.example.com");
    let create = |o: serde_json::Value| Commit {
        created: vec![obj(o)],
        ..Commit::default()
    };
    let base = |extra: serde_json::Value| {
        let mut o = json!({"hostname": "new1", "servertype": "vm", "intern_ip": "10.5.0.1",
            "hypervisor": "hv1.example.com", "owner": "x"});
        if let (Some(m), serde_json::Value::Object(e)) = (o.as_object_mut(), extra) {
            m.extend(e);
        }
        create(o)
    };
    let cases: Vec<(Commit, &str, Option<&str>, &str)> = vec![
        (
            base(json!({"hostname": "Bad Name"})),
            "Bad Name",
            Some("hostname"),
            "hostname",
        ),
        (
            base(json!({"hostname": "vm1.example.com"})),
            "vm1.example.com",
            Some("hostname"),
            "unique_hostname",
        ),
        (
            base(json!({"intern_ip": "10.0.2.1"})),
            "new1",
            Some("intern_ip"),
            "unique_ip",
        ),
        (
            base(json!({"intern_ip": "10.5.0.0/24"})),
            "new1",
            Some("intern_ip"),
            "ip_addr_type",
        ),
        (
            base(json!({"os": "Bookworm 12"})),
            "new1",
            Some("os"),
            "regexp",
        ),
        (
            base(json!({"owner": null})),
            "new1",
            Some("owner"),
            "required",
        ),
        (
            base(json!({"num_cpu": "many"})),
            "new1",
            Some("num_cpu"),
            "type",
        ),
        (
            base(json!({"ip6": "10.0.0.1"})),
            "new1",
            Some("ip6"),
            "type",
        ),
        (base(json!({"tags": "single"})), "", None, ""),
        (
            base(json!({"bogus": 1})),
            "new1",
            Some("bogus"),
            "unknown_attribute",
        ),
        (
            base(json!({"hypervisor": "nothere"})),
            "new1",
            Some("hypervisor"),
            "relation",
        ),
        (
            base(json!({"hypervisor": "vm1.example.com"})),
            "new1",
            Some("hypervisor"),
            "relation",
        ),
        (
            base(json!({"servertype": "nope"})),
            "new1",
            Some("servertype"),
            "unknown_servertype",
        ),
        (
            create(
                json!({"hostname": "net2", "servertype": "route_network", "intern_ip": "10.0.128.0/17"}),
            ),
            "net2",
            Some("intern_ip"),
            "network_overlap",
        ),
        (
            create(
                json!({"hostname": "net3", "servertype": "route_network", "intern_ip": "10.0.0.0/8"}),
            ),
            "net3",
            Some("intern_ip"),
            "network_overlap",
        ),
        (
            create(json!({"hostname": "dom", "servertype": "domain", "intern_ip": "10.0.0.1"})),
            "dom",
            Some("intern_ip"),
            "ip_addr_type",
        ),
        (
            Commit {
                changed: vec![Change::new(vm1).update("serial", "s1".into(), "s2".into())],
                ..Commit::default()
            },
            "vm1.example.com",
            Some("serial"),
            "readonly",
        ),
        (
            Commit {
                changed: vec![Change::new(vm1).update(
                    "servertype",
                    "vm".into(),
                    "hypervisor".into(),
                )],
                ..Commit::default()
            },
            "vm1.example.com",
            Some("servertype"),
            "readonly",
        ),
    ];
    for (commit, object, attribute, rule) in cases {
        if rule.is_empty() {
            // A single value for a multi attribute is a one-element set.
            store.commit(&commit, "test").unwrap();
            continue;
        }
        let v = validation(store.commit(&commit, "test"));
        assert_eq!(
            (v.object.as_deref(), v.attribute.as_deref(), v.rule),
            (Some(object), attribute, rule),
            "{v}"
        );
        assert!(
            v.to_string().contains(object),
            "message names the object: {v}"
        );
    }
    // Networks of different servertypes may nest; load balancers share addresses.
    commit_created(
        &*store,
        vec![
            obj(
                json!({"hostname": "vlan2", "servertype": "vlan_network", "intern_ip": "10.0.2.0/24"}),
            ),
            obj(json!({"hostname": "lb1", "servertype": "lb", "intern_ip": "10.0.2.1"})),
            obj(json!({"hostname": "lb2", "servertype": "lb", "intern_ip": "10.0.2.1"})),
        ],
    );
}

pub fn deleting_a_referenced_object_is_refused(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let hv2 = id_of(&*store, "hv2.example.com");
    let vm3 = id_of(&*store, "vm3.other");
    let v = validation(store.commit(
        &Commit {
            deleted: vec![hv2],
            ..Commit::default()
        },
        "test",
    ));
    assert_eq!(
        (v.rule, v.object.as_deref()),
        ("relation", Some("hv2.example.com"))
    );
    assert!(v.message.contains("vm3.other"), "{v}");
    store
        .commit(
            &Commit {
                deleted: vec![hv2, vm3],
                ..Commit::default()
            },
            "test",
        )
        .unwrap();
    assert!(query_text(&*store, "servertype=hypervisor hostname=hv2.example.com").is_empty());
}

pub fn history_records_every_commit(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let vm2 = id_of(&*store, "vm2.example.com");
    let c1 = store
        .commit(
            &Commit {
                changed: vec![Change::new(vm2)
                    .update("os", "bullseye".into(), "bookworm".into())
                    .multi("tags", vec!["x".into()], vec![])],
                ..Commit::default()
            },
            "alice (key laptop)",
        )
        .unwrap();
    let c2 = store
        .commit(
            &Commit {
                deleted: vec![vm2],
                ..Commit::default()
            },
            "bob",
        )
        .unwrap();
    assert!(c2 > c1);
    let history = store.object_history(vm2).unwrap();
    let kinds: Vec<ChangeKind> = history.iter().map(|r| r.changes[0].kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::Created,
            ChangeKind::Changed,
            ChangeKind::Deleted
        ]
    );
    assert_eq!(history[1].author, "alice (key laptop)");
    assert_eq!(history[1].commit_id, c1);
    let diff = &history[1].changes[0].attributes;
    assert_eq!(diff["os"].old, Value::from("bullseye"));
    assert_eq!(diff["os"].new, Value::from("bookworm"));
    assert_eq!(diff["tags"].new, Value::set(vec!["db".into(), "x".into()]));
    assert_eq!(diff.len(), 2, "only changed attributes: {diff:?}");
    let created = &history[0].changes[0].attributes;
    assert_eq!(created["hypervisor"].new, Value::from("hv1.example.com"));
    assert_eq!(
        history[2].changes[0].attributes["owner"].old,
        Value::from("bob")
    );
    let record = store.commit_record(c2).unwrap();
    assert_eq!((record.author.as_str(), record.changes.len()), ("bob", 1));
    let fixture_commit = store.commit_record(history[0].commit_id).unwrap();
    assert_eq!(
        fixture_commit.changes.len(),
        3,
        "the fixture created three VMs in one commit"
    );
    let recent = store.recent_commits(2).unwrap();
    assert_eq!(
        recent.iter().map(|r| r.commit_id).collect::<Vec<_>>(),
        [c2, c1]
    );
    assert!(matches!(
        store.commit_record(c2 + 100),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.object_history(999_999),
        Err(StoreError::NotFound(_))
    ));
}

pub fn servertype_update_drops_removed_attribute_values(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let mut hv = store.schema().unwrap().servertypes["hypervisor"].clone();
    hv.attributes.retain(|a| a.attribute_id != "tags");
    schema_change(&*store, SchemaChange::UpdateServertype { servertype: hv });
    let hv1 = get(&*store, "hv1.example.com");
    assert_eq!(hv1.get("tags"), None);
    assert!(query_text(&*store, "tags=kvm").is_empty());
    let v = store.change_schema(
        &[SchemaChange::DeleteServertype {
            servertype_id: "hypervisor".into(),
        }],
        "test",
    );
    assert!(
        matches!(v, Err(StoreError::Validation(_))),
        "servertype with objects: {v:?}"
    );
    let _ = AttributeChange::New { new: Value::Null };
}

/// The schema and every object, as the API would send them.
fn everything(store: &dyn Store) -> (Vec<u8>, Vec<u8>) {
    let schema = serde_json::to_vec(&store.schema().expect("schema")).expect("schema json");
    let objects = serde_json::to_vec(&store.query(&Query::default()).expect("every object"))
        .expect("objects json");
    (schema, objects)
}

/// Adds `rack`, swaps `tags` for it on hypervisors (which strips hv1's
/// tags) and creates a `rack_unit` servertype that uses it.
fn rack_batch(store: &dyn Store) -> Vec<SchemaChange> {
    let mut hv = store.schema().expect("schema").servertypes["hypervisor"].clone();
    hv.attributes.retain(|a| a.attribute_id != "tags");
    hv.attributes.push(ServertypeAttribute::new("rack"));
    vec![
        SchemaChange::CreateAttribute {
            attribute: attr("rack", AttributeType::String),
        },
        SchemaChange::UpdateServertype { servertype: hv },
        SchemaChange::CreateServertype {
            servertype: st("rack_unit", IpAddrType::Null, &["rack"]),
        },
    ]
}

fn refusal_message(result: Result<i64, StoreError>) -> String {
    match result {
        Err(StoreError::Validation(v)) => v.message,
        Err(StoreError::NotFound(m)) => m,
        other => panic!("expected a refused batch, got {other:?}"),
    }
}

pub fn schema_batch_refused_at_its_last_change_changes_nothing(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let before = everything(&*store);
    let history = store.schema_history(usize::MAX).expect("schema history");
    let commits = store.recent_commits(100).expect("recent commits");
    let unchanged = |what: &str| {
        assert!(
            everything(&*store) == before,
            "{what}: schema or objects changed"
        );
        assert_eq!(
            store.schema_history(usize::MAX).expect("schema history"),
            history,
            "{what}: schema history changed"
        );
        assert_eq!(store.recent_commits(100).expect("recent commits"), commits);
    };

    // The first three changes are valid (the third needs the first), the
    // fourth is not: os is used by vm.
    let mut batch = rack_batch(&*store);
    batch.push(SchemaChange::DeleteAttribute {
        attribute_id: "os".into(),
    });
    let result = store.change_schema(&batch, "alice");
    assert!(
        matches!(result, Err(StoreError::Validation(_))),
        "{result:?}"
    );
    let message = refusal_message(result);
    assert!(
        message.starts_with("schema change 4 of 4 (delete_attribute os): ")
            && message.contains("vm")
            && message.ends_with("nothing was applied"),
        "{message}"
    );
    unchanged("refused at its last change");
    assert_eq!(query_text(&*store, "tags=kvm"), ["hv1.example.com"]);
    assert!(!store.schema().unwrap().attributes.contains_key("rack"));

    // Each change checked against the schema the ones before it make:
    // the second delete finds nothing left to delete.
    let spare = || SchemaChange::DeleteAttribute {
        attribute_id: "spare".into(),
    };
    let batch = [
        SchemaChange::CreateAttribute {
            attribute: attr("spare", AttributeType::Number),
        },
        spare(),
        spare(),
    ];
    let result = store.change_schema(&batch, "alice");
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
    let message = refusal_message(result);
    assert!(
        message.starts_with("schema change 3 of 3 (delete_attribute spare): "),
        "{message}"
    );
    unchanged("refused at a change that an earlier one made wrong");

    // ... and never against the ones after it.
    let mut batch = rack_batch(&*store);
    batch.rotate_left(2);
    let message = refusal_message(store.change_schema(&batch, "alice"));
    assert!(
        message.starts_with("schema change 1 of 3 (create_servertype rack_unit): ")
            && message.contains("rack"),
        "{message}"
    );
    unchanged("refused at its first change");

    assert!(matches!(
        store.change_schema(&[], "alice"),
        Err(StoreError::Validation(_))
    ));
    unchanged("empty batch");

    // The store is unharmed: the valid part of the batch applies.
    store
        .change_schema(&rack_batch(&*store), "alice")
        .expect("the valid changes alone");
    assert!(query_text(&*store, "tags=kvm").is_empty());
}

pub fn schema_batch_applies_whole_and_is_recorded(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let before = store.schema_history(usize::MAX).expect("schema history");
    assert!(
        before.len() > 1
            && before
                .iter()
                .all(|r| r.author == "fixture" && r.changes.len() == 1),
        "the fixture's single changes are recorded: {before:?}"
    );
    assert!(
        before
            .windows(2)
            .all(|w| w[0].schema_change_id > w[1].schema_change_id),
        "newest first"
    );
    let commits = store.recent_commits(100).expect("recent commits");

    let mut batch = rack_batch(&*store);
    let mut legacy = attr("legacy", AttributeType::Number);
    batch.push(SchemaChange::CreateAttribute {
        attribute: legacy.clone(),
    });
    legacy.attribute_type = AttributeType::String;
    batch.push(SchemaChange::UpdateAttribute { attribute: legacy });
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let id = store
        .change_schema(&batch, "alice (key laptop)")
        .unwrap_or_else(|e| panic!("{e}"));

    let schema = store.schema().unwrap();
    let hv = &schema.servertypes["hypervisor"];
    assert!(hv.attribute("rack").is_some() && hv.attribute("tags").is_none());
    assert_eq!(
        schema.servertypes["rack_unit"].attributes[0].attribute_id,
        "rack"
    );
    assert_eq!(
        schema.attributes["legacy"].attribute_type,
        AttributeType::String
    );
    assert_eq!(get(&*store, "hv1.example.com").get("tags"), None);
    assert!(query_text(&*store, "tags=kvm").is_empty());
    commit_created(
        &*store,
        vec![obj(
            serde_json::json!({"hostname": "ru1", "servertype": "rack_unit", "rack": "A1"}),
        )],
    );
    assert_eq!(query_text(&*store, "rack=A1"), ["ru1"]);

    let history = store.schema_history(usize::MAX).expect("schema history");
    assert_eq!(history.len(), before.len() + 1, "one record per batch");
    let record = &history[0];
    assert_eq!(record.schema_change_id, id);
    assert!(id > before[0].schema_change_id);
    assert_eq!(record.author, "alice (key laptop)");
    assert_eq!(record.changes, batch);
    assert!(
        (started - 1..=started + 60).contains(&record.time.0.unix),
        "recorded at {}, started at {started}",
        record.time.0.unix
    );
    assert_eq!(&history[1..], &before[..]);
    assert_eq!(
        store.schema_history(1).unwrap(),
        std::slice::from_ref(record)
    );
    // Schema changes are not object commits.
    let after = store.recent_commits(100).expect("recent commits");
    assert_eq!(after.len(), commits.len() + 1, "only ru1's commit is new");
    assert_eq!(&after[1..], &commits[..]);
}

/// `store`'s refusal of `batch`: the same error, word for word, as
/// herd-store's rules make for change `index`, and nothing changed.
fn refused_like(
    store: &dyn Store,
    what: &str,
    batch: &[SchemaChange],
    index: usize,
    refusal: crate::schema_change::SchemaRefusal,
) {
    let before = everything(store);
    let history = store.schema_history(usize::MAX).expect("schema history");
    let expected = crate::refused_schema_change(index, batch, refusal.into());
    let got = match store.change_schema(batch, "alice") {
        Ok(id) => panic!("{what}: accepted as schema change {id}, expected: {expected}"),
        Err(e) => e,
    };
    assert_eq!(got.to_string(), expected.to_string(), "{what}");
    assert_eq!(got.http_status(), expected.http_status(), "{what}");
    if let (StoreError::Validation(got), StoreError::Validation(expected)) = (&got, &expected) {
        assert_eq!(got.rule, expected.rule, "{what}: rule");
    }
    assert!(
        everything(store) == before,
        "{what}: schema or objects changed"
    );
    assert_eq!(
        store.schema_history(usize::MAX).expect("schema history"),
        history,
        "{what}: schema history changed"
    );
}

/// Every rule of `herd_store::schema_change`, with the fixture's objects:
/// the same refusal and message on every engine.
pub fn schema_rules_refuse_alike(factory: &Factory) {
    use crate::schema_change::{Kind, SchemaRefusal as R, MAX_ID_LEN};
    use AttributeType as T;
    let store = factory();
    fixture(&*store);
    let schema = store.schema().expect("schema");
    let s = |id: &str| id.to_owned();
    let create_attribute = |a: Attribute| SchemaChange::CreateAttribute { attribute: a };
    let create_servertype = |s: Servertype| SchemaChange::CreateServertype { servertype: s };
    let update_servertype = |s: Servertype| SchemaChange::UpdateServertype { servertype: s };
    let retyped = |id: &str, ty: AttributeType, multi: bool| SchemaChange::UpdateAttribute {
        attribute: Attribute {
            attribute_type: ty,
            multi,
            ..schema.attributes[id].clone()
        },
    };
    let with_target = |id: &str, ty: AttributeType, target: &str| Attribute {
        target_servertype: Some(target.into()),
        ..attr(id, ty)
    };
    // vm without its relation to hypervisors (and dc, related via it).
    let mut vm_alone = schema.servertypes["vm"].clone();
    vm_alone
        .attributes
        .retain(|a| a.attribute_id != "hypervisor" && a.attribute_id != "dc");
    let lb_with = |sa: ServertypeAttribute| {
        let mut lb = schema.servertypes["lb"].clone();
        lb.attributes.push(sa);
        lb
    };
    let bad_regexp = Attribute {
        regexp: Some("[".into()),
        ..attr("broken", T::String)
    };
    let regexp_reason = herd_model::validate::attribute_regex(&bad_regexp)
        .expect_err("[ does not compile")
        .message;
    let bad_default = Value::String("many".into());
    let default_reason = herd_model::validate::coerce_for_attribute(
        &schema.attributes["num_cpu"],
        None,
        &bad_default,
    )
    .expect_err("many is not a number")
    .message;
    let long = "a".repeat(MAX_ID_LEN + 1);

    let cases: Vec<(&str, Vec<SchemaChange>, usize, R)> = vec![
        (
            "attribute id with '-'",
            vec![create_attribute(attr("bad-name", T::String))],
            0,
            R::InvalidId {
                kind: Kind::Attribute,
                id: s("bad-name"),
            },
        ),
        (
            "attribute id starting with a digit",
            vec![create_attribute(attr("2nd", T::String))],
            0,
            R::InvalidId {
                kind: Kind::Attribute,
                id: s("2nd"),
            },
        ),
        (
            "servertype id with '-'",
            vec![create_servertype(st("rack-unit", IpAddrType::Null, &[]))],
            0,
            R::InvalidId {
                kind: Kind::Servertype,
                id: s("rack-unit"),
            },
        ),
        (
            "servertype id too long",
            vec![create_servertype(st(&long, IpAddrType::Null, &[]))],
            0,
            R::InvalidId {
                kind: Kind::Servertype,
                id: long.clone(),
            },
        ),
        (
            "special attribute",
            vec![create_attribute(attr("intern_ip", T::Inet))],
            0,
            R::SpecialAttribute { id: s("intern_ip") },
        ),
        (
            "attribute exists",
            vec![create_attribute(attr("os", T::String))],
            0,
            R::Exists {
                kind: Kind::Attribute,
                id: s("os"),
            },
        ),
        (
            "servertype exists",
            vec![create_servertype(st("lb", IpAddrType::Null, &[]))],
            0,
            R::Exists {
                kind: Kind::Servertype,
                id: s("lb"),
            },
        ),
        (
            "update of a missing attribute",
            vec![SchemaChange::UpdateAttribute {
                attribute: attr("nope", T::String),
            }],
            0,
            R::Missing {
                kind: Kind::Attribute,
                id: s("nope"),
            },
        ),
        (
            "delete of a missing servertype",
            vec![SchemaChange::DeleteServertype {
                servertype_id: s("nope"),
            }],
            0,
            R::Missing {
                kind: Kind::Servertype,
                id: s("nope"),
            },
        ),
        (
            "type change while values exist",
            vec![retyped("num_cpu", T::String, false)],
            0,
            R::ChangeWithValues {
                attribute: s("num_cpu"),
                servertypes: vec![s("hypervisor"), s("vm")],
                from: s("number"),
                to: s("string"),
            },
        ),
        (
            "multi change while values exist",
            vec![retyped("tags", T::String, false)],
            0,
            R::ChangeWithValues {
                attribute: s("tags"),
                servertypes: vec![s("hypervisor"), s("vm")],
                from: s("multi string"),
                to: s("string"),
            },
        ),
        (
            "relation target change while values exist",
            vec![SchemaChange::UpdateAttribute {
                attribute: with_target("hypervisor", T::Relation, "lb"),
            }],
            0,
            R::ChangeWithValues {
                attribute: s("hypervisor"),
                servertypes: vec![s("vm")],
                from: s("relation to hypervisor"),
                to: s("relation to lb"),
            },
        ),
        (
            "delete of a used attribute",
            vec![SchemaChange::DeleteAttribute {
                attribute_id: s("owner"),
            }],
            0,
            R::InUse {
                attribute: s("owner"),
                servertypes: vec![s("vm")],
            },
        ),
        (
            "delete of a reversed relation",
            vec![
                update_servertype(vm_alone.clone()),
                SchemaChange::DeleteAttribute {
                    attribute_id: s("hypervisor"),
                },
            ],
            1,
            R::Reversed {
                attribute: s("hypervisor"),
                reverse: s("vms"),
            },
        ),
        (
            "a reversed relation changes type once its values are gone",
            vec![
                update_servertype(vm_alone),
                retyped("hypervisor", T::String, false),
            ],
            1,
            R::Reversed {
                attribute: s("hypervisor"),
                reverse: s("vms"),
            },
        ),
        (
            "delete of a servertype with objects",
            vec![SchemaChange::DeleteServertype {
                servertype_id: s("vm"),
            }],
            0,
            R::HasObjects {
                servertype: s("vm"),
            },
        ),
        (
            "delete of a targeted servertype",
            vec![
                create_servertype(st("rack_row", IpAddrType::Null, &[])),
                create_attribute(with_target("row", T::Relation, "rack_row")),
                SchemaChange::DeleteServertype {
                    servertype_id: s("rack_row"),
                },
            ],
            2,
            R::Targeted {
                servertype: s("rack_row"),
                attribute: s("row"),
            },
        ),
        (
            "ip_addr_type change with objects",
            vec![update_servertype(Servertype {
                ip_addr_type: IpAddrType::Null,
                ..schema.servertypes["hypervisor"].clone()
            })],
            0,
            R::IpAddrTypeWithObjects {
                servertype: s("hypervisor"),
                from: "host",
                to: "null",
            },
        ),
        (
            "supernet targeting a host servertype",
            vec![create_attribute(with_target(
                "hv_net",
                T::Supernet,
                "hypervisor",
            ))],
            0,
            R::SupernetTargetNotNetwork {
                attribute: s("hv_net"),
                target: s("hypervisor"),
                ip_addr_type: "host",
            },
        ),
        (
            "supernet target stops being a network",
            vec![
                create_servertype(st("site_network", IpAddrType::Network, &[])),
                create_attribute(with_target("site", T::Supernet, "site_network")),
                update_servertype(st("site_network", IpAddrType::Host, &[])),
            ],
            2,
            R::SupernetTargetNotNetwork {
                attribute: s("site"),
                target: s("site_network"),
                ip_addr_type: "host",
            },
        ),
        (
            "domain without target",
            vec![create_attribute(attr("zone2", T::Domain))],
            0,
            R::NeedsTarget {
                attribute: s("zone2"),
                ty: "domain",
            },
        ),
        (
            "unknown target",
            vec![create_attribute(with_target(
                "owner_host",
                T::Relation,
                "nope",
            ))],
            0,
            R::UnknownTarget {
                attribute: s("owner_host"),
                target: s("nope"),
            },
        ),
        (
            "reverse of a string",
            vec![create_attribute(Attribute {
                reversed_attribute: Some("os".into()),
                ..attr("os_users", T::Reverse)
            })],
            0,
            R::BadReversed {
                attribute: s("os_users"),
                reversed: Some(s("os")),
            },
        ),
        (
            "reverse of nothing",
            vec![create_attribute(attr("orphans", T::Reverse))],
            0,
            R::BadReversed {
                attribute: s("orphans"),
                reversed: None,
            },
        ),
        (
            "regexp that does not compile",
            vec![create_attribute(bad_regexp.clone())],
            0,
            R::BadRegexp {
                attribute: s("broken"),
                reason: regexp_reason,
            },
        ),
        (
            "servertype listing an unknown attribute",
            vec![create_servertype(st("x", IpAddrType::Host, &["nope"]))],
            0,
            R::UnknownAttribute {
                servertype: s("x"),
                attribute: s("nope"),
            },
        ),
        (
            "servertype listing an attribute twice",
            vec![create_servertype(st("x", IpAddrType::Host, &["os", "os"]))],
            0,
            R::ListedTwice {
                servertype: s("x"),
                attribute: s("os"),
            },
        ),
        (
            "related via a string",
            vec![update_servertype(lb_with(ServertypeAttribute {
                related_via_attribute: Some("os".into()),
                ..ServertypeAttribute::new("dc")
            }))],
            0,
            R::BadRelatedVia {
                servertype: s("lb"),
                attribute: s("dc"),
                via: s("os"),
            },
        ),
        (
            "related via a relation the servertype does not list",
            vec![update_servertype(lb_with(ServertypeAttribute {
                related_via_attribute: Some("hypervisor".into()),
                ..ServertypeAttribute::new("dc")
            }))],
            0,
            R::BadRelatedVia {
                servertype: s("lb"),
                attribute: s("dc"),
                via: s("hypervisor"),
            },
        ),
        (
            "default of a computed attribute",
            vec![update_servertype(lb_with(ServertypeAttribute {
                default_value: Some(Value::String("x".into())),
                ..ServertypeAttribute::new("vms")
            }))],
            0,
            R::ComputedDefault {
                servertype: s("lb"),
                attribute: s("vms"),
            },
        ),
        (
            "default of the wrong type",
            vec![update_servertype(lb_with(ServertypeAttribute {
                default_value: Some(bad_default.clone()),
                ..ServertypeAttribute::new("num_cpu")
            }))],
            0,
            R::BadDefault {
                servertype: s("lb"),
                attribute: s("num_cpu"),
                reason: default_reason,
            },
        ),
    ];
    for (what, batch, index, refusal) in cases {
        refused_like(&*store, what, &batch, index, refusal);
    }
    // Pinned words, so a change of the shared messages is a visible one.
    let message =
        refusal_message(store.change_schema(&[retyped("num_cpu", T::String, false)], "alice"));
    assert_eq!(
        message,
        "schema change 1 of 1 (update_attribute num_cpu): attribute num_cpu has values on objects \
         of servertype(s) hypervisor, vm: its type, multi and relation target can not change \
         (number to string); \
         create a new attribute, move the values, then delete this one; nothing was applied"
    );
    // And the names scripts match on.
    let refused = validation(store.change_schema(&[retyped("num_cpu", T::String, false)], "alice"));
    assert_eq!(refused.rule, "schema_change_with_values");
}

/// What serveradmin allows and one engine used to refuse: a type change
/// of an attribute servertypes list but no object holds, and one whose
/// values an earlier change of the batch removed.
pub fn schema_type_change_without_values_is_accepted(factory: &Factory) {
    let store = factory();
    fixture(&*store);
    let mut spare = attr("spare", AttributeType::Number);
    let mut lb = store.schema().unwrap().servertypes["lb"].clone();
    lb.attributes.push(ServertypeAttribute::new("spare"));
    store
        .change_schema(
            &[
                SchemaChange::CreateAttribute {
                    attribute: spare.clone(),
                },
                SchemaChange::UpdateServertype { servertype: lb },
            ],
            "alice",
        )
        .expect("spare on lb");
    spare.attribute_type = AttributeType::String;
    spare.multi = true;
    store
        .change_schema(
            &[SchemaChange::UpdateAttribute { attribute: spare }],
            "alice",
        )
        .expect("listed by lb, held by no object");
    assert!(store.schema().unwrap().is_multi("spare"));

    // dc has values on hypervisors only; the batch strips them first.
    let mut hv = store.schema().unwrap().servertypes["hypervisor"].clone();
    hv.attributes.retain(|a| a.attribute_id != "dc");
    let mut dc = store.schema().unwrap().attributes["dc"].clone();
    dc.attribute_type = AttributeType::Number;
    let refused = store.change_schema(
        &[SchemaChange::UpdateAttribute {
            attribute: dc.clone(),
        }],
        "alice",
    );
    assert!(
        refusal_message(refused)
            .contains("attribute dc has values on objects of servertype(s) hypervisor:"),
        "dc is held by hypervisors"
    );
    store
        .change_schema(
            &[
                SchemaChange::UpdateServertype { servertype: hv },
                SchemaChange::UpdateAttribute { attribute: dc },
            ],
            "alice",
        )
        .expect("values stripped earlier in the batch");
    assert_eq!(
        store.schema().unwrap().attributes["dc"].attribute_type,
        AttributeType::Number
    );
    assert_eq!(get(&*store, "hv1.example.com").get("dc"), None);

    // A boolean false is a value like any other, on every engine.
    let vm1 = id_of(&*store, "vm1.example.com");
    let all_false = Commit {
        changed: vec![Change::new(vm1).update("backup", Value::Bool(true), Value::Bool(false))],
        ..Commit::default()
    };
    store.commit(&all_false, "test").expect("vm1 backup false");
    let mut backup = store.schema().unwrap().attributes["backup"].clone();
    backup.attribute_type = AttributeType::String;
    let message = refusal_message(store.change_schema(
        &[SchemaChange::UpdateAttribute { attribute: backup }],
        "alice",
    ));
    assert!(
        message.contains("attribute backup has values on objects of servertype(s) vm:"),
        "{message}"
    );
}
