//! Servertypes and attributes: serveradmin's schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// The special attributes every object has, besides its typed attributes.
pub const SPECIAL_ATTRIBUTES: [&str; 4] = ["object_id", "hostname", "servertype", "intern_ip"];

/// The type of an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeType {
    String,
    Boolean,
    Number,
    Inet,
    Macaddr,
    Date,
    Datetime,
    /// Points at another object (stored by id, shown as its hostname).
    Relation,
    /// Computed: the objects whose `reversed_attribute` relation points here.
    Reverse,
    /// Computed: the network object of `target_servertype` containing `intern_ip`.
    Supernet,
    /// Computed: the object of `target_servertype` whose hostname is a domain
    /// suffix of this object's hostname.
    Domain,
}

impl AttributeType {
    pub fn name(self) -> &'static str {
        match self {
            AttributeType::String => "string",
            AttributeType::Boolean => "boolean",
            AttributeType::Number => "number",
            AttributeType::Inet => "inet",
            AttributeType::Macaddr => "macaddr",
            AttributeType::Date => "date",
            AttributeType::Datetime => "datetime",
            AttributeType::Relation => "relation",
            AttributeType::Reverse => "reverse",
            AttributeType::Supernet => "supernet",
            AttributeType::Domain => "domain",
        }
    }

    /// Computed types are never written by a commit.
    pub fn is_computed(self) -> bool {
        matches!(
            self,
            AttributeType::Reverse | AttributeType::Supernet | AttributeType::Domain
        )
    }

    /// Types whose values are hostnames of other objects.
    pub fn is_related(self) -> bool {
        matches!(
            self,
            AttributeType::Relation
                | AttributeType::Reverse
                | AttributeType::Supernet
                | AttributeType::Domain
        )
    }
}

/// What `intern_ip` holds for objects of a servertype.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpAddrType {
    /// No `intern_ip`.
    #[default]
    Null,
    /// One address, unique among all hosts.
    Host,
    /// One address, may be shared.
    Loadbalancer,
    /// A network; networks of one servertype do not overlap.
    Network,
}

/// Address family restriction of inet and supernet attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InetFamily {
    #[serde(rename = "IPV4", alias = "ipv4")]
    Ipv4,
    #[serde(rename = "IPV6", alias = "ipv6")]
    Ipv6,
}

/// An attribute definition (serveradmin's `attribute` table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub attribute_id: String,
    #[serde(rename = "type")]
    pub attribute_type: AttributeType,
    #[serde(default)]
    pub multi: bool,
    #[serde(default)]
    pub hovertext: String,
    #[serde(default = "default_group")]
    pub group: String,
    #[serde(default)]
    pub help_link: Option<String>,
    /// Once set, the value can not be changed (only on creation).
    #[serde(default)]
    pub readonly: bool,
    /// Every value must match this regular expression (whole value).
    #[serde(default)]
    pub regexp: Option<String>,
    /// Relation / supernet / domain: the servertype of the objects pointed at
    /// (`None` for a relation means any servertype).
    #[serde(default)]
    pub target_servertype: Option<String>,
    /// Reverse: the relation attribute this attribute reverses.
    #[serde(default)]
    pub reversed_attribute: Option<String>,
    /// Inet and supernet: restrict to one address family.
    #[serde(default)]
    pub inet_address_family: Option<InetFamily>,
    /// Copied when an object is cloned.
    #[serde(default)]
    pub clone: bool,
    /// Changes are recorded in history.
    #[serde(default = "yes")]
    pub history: bool,
}

fn default_group() -> String {
    "other".to_owned()
}
fn yes() -> bool {
    true
}

impl Attribute {
    /// A plain attribute with defaults for every optional setting.
    pub fn new(id: &str, attribute_type: AttributeType) -> Attribute {
        Attribute {
            attribute_id: id.to_owned(),
            attribute_type,
            multi: false,
            hovertext: String::new(),
            group: default_group(),
            help_link: None,
            readonly: false,
            regexp: None,
            target_servertype: None,
            reversed_attribute: None,
            inet_address_family: None,
            clone: false,
            history: true,
        }
    }

    /// Reverse attributes are always multi.
    pub fn is_multi(&self) -> bool {
        self.multi || self.attribute_type == AttributeType::Reverse
    }
}

/// An attribute as attached to one servertype.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServertypeAttribute {
    pub attribute_id: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default_value: Option<Value>,
    #[serde(default)]
    pub default_visible: bool,
    /// Take the value from the object this relation/supernet attribute points at.
    #[serde(default)]
    pub related_via_attribute: Option<String>,
}

impl ServertypeAttribute {
    pub fn new(attribute_id: &str) -> ServertypeAttribute {
        ServertypeAttribute {
            attribute_id: attribute_id.to_owned(),
            required: false,
            default_value: None,
            default_visible: false,
            related_via_attribute: None,
        }
    }
}

/// A servertype with the attributes its objects may have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Servertype {
    pub servertype_id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub ip_addr_type: IpAddrType,
    #[serde(default)]
    pub attributes: Vec<ServertypeAttribute>,
}

impl Servertype {
    pub fn new(id: &str, ip_addr_type: IpAddrType) -> Servertype {
        Servertype {
            servertype_id: id.to_owned(),
            description: String::new(),
            ip_addr_type,
            attributes: Vec::new(),
        }
    }

    pub fn attribute(&self, id: &str) -> Option<&ServertypeAttribute> {
        self.attributes.iter().find(|a| a.attribute_id == id)
    }
}

/// The whole schema: attributes and servertypes by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub attributes: BTreeMap<String, Attribute>,
    pub servertypes: BTreeMap<String, Servertype>,
}

impl Schema {
    pub fn attribute(&self, id: &str) -> Option<&Attribute> {
        self.attributes.get(id)
    }

    pub fn servertype(&self, id: &str) -> Option<&Servertype> {
        self.servertypes.get(id)
    }

    /// The type of any queryable attribute, including the special ones.
    pub fn attribute_type(&self, id: &str) -> Option<AttributeType> {
        match id {
            "object_id" => Some(AttributeType::Number),
            "hostname" | "servertype" => Some(AttributeType::String),
            "intern_ip" => Some(AttributeType::Inet),
            _ => self.attributes.get(id).map(|a| a.attribute_type),
        }
    }

    pub fn is_multi(&self, id: &str) -> bool {
        self.attributes.get(id).is_some_and(Attribute::is_multi)
    }
}

/// A change to the schema, as the API takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SchemaChange {
    /// Create an attribute (fails if it exists).
    CreateAttribute { attribute: Attribute },
    /// Replace an attribute's settings; its type can not change while
    /// values exist.
    UpdateAttribute { attribute: Attribute },
    /// Delete an attribute; refused while any servertype uses it.
    DeleteAttribute { attribute_id: String },
    /// Create a servertype with its attribute list.
    CreateServertype { servertype: Servertype },
    /// Replace a servertype's description, ip_addr_type and attribute list.
    /// Values of attributes removed from the list are deleted.
    UpdateServertype { servertype: Servertype },
    /// Delete a servertype; refused while objects of it exist.
    DeleteServertype { servertype_id: String },
}

impl SchemaChange {
    /// A batch as the API and `herd schema apply` take it: a list of
    /// changes, `{"changes": [...]}`, or one change. A refusal names the
    /// change (counted from 1) and the actions there are.
    pub fn parse_batch(json: serde_json::Value) -> Result<Vec<SchemaChange>, String> {
        use serde_json::Value as Json;
        let list = match json {
            Json::Array(items) => items,
            Json::Object(mut map) if map.contains_key("changes") => match map.remove("changes") {
                Some(Json::Array(items)) => items,
                _ => return Err("\"changes\" must be a list of schema changes".to_string()),
            },
            single @ Json::Object(_) => vec![single],
            _ => {
                return Err(
                    "send {\"changes\": [{\"action\": \"create_attribute\", ...}]}".to_string(),
                )
            }
        };
        list.into_iter()
            .enumerate()
            .map(|(i, item)| {
                serde_json::from_value(item).map_err(|e| {
                    format!(
                        "schema change {}: {e}; actions are create_attribute, update_attribute, delete_attribute, create_servertype, update_servertype, delete_servertype",
                        i + 1
                    )
                })
            })
            .collect()
    }
}
