//! libvirt XML, both ways: facts read from domain, pool, volume and network
//! XML, the destination XML with disks moved to new paths or types, and
//! herd's lock element in a domain's `<metadata>`. Pure functions over
//! strings; nothing here talks to libvirt.

use crate::facts::{DiskSource, InterfaceFacts, LockFacts};
use roxmltree::{Document, Node};

/// XML namespace of herd's domain metadata.
pub const HERD_NS: &str = "https://herd.invalid/xmlns/migrate/1";
/// Prefix libvirt stores herd's metadata under.
pub const HERD_PREFIX: &str = "herd";

#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("libvirt returned XML herd cannot parse ({0}); please report this with the XML")]
    Parse(#[from] roxmltree::Error),
    #[error("the domain XML has no disk with target '{0}'")]
    NoDisk(String),
    #[error("the domain XML has no <{0}> element")]
    Missing(&'static str),
}

/// A disk as the domain XML describes it (the pool volume is looked up later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlDisk {
    pub target: String,
    pub device: String,
    pub source: DiskSource,
    pub format: String,
    pub readonly: bool,
    pub shareable: bool,
}

/// The parts of a domain XML the planner needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlDomain {
    pub name: String,
    pub uuid: String,
    /// Maximum memory in bytes.
    pub memory: u64,
    pub disks: Vec<XmlDisk>,
    pub interfaces: Vec<InterfaceFacts>,
    pub lock: Option<LockFacts>,
    /// The `<cpu>` element, verbatim, when the domain asks for a CPU model.
    pub cpu: Option<String>,
    pub arch: String,
    pub machine: Option<String>,
    pub virt_type: String,
    pub emulator: Option<String>,
}

pub fn parse_domain(xml: &str) -> Result<XmlDomain, XmlError> {
    let doc = Document::parse(xml)?;
    let root = doc.root_element();
    let name = child_text(root, "name").ok_or(XmlError::Missing("name"))?;
    let uuid = child_text(root, "uuid").unwrap_or_default();
    let memory = child(root, "memory")
        .map(|m| {
            let n: u64 = m.text().unwrap_or("0").trim().parse().unwrap_or(0);
            n.saturating_mul(unit_factor(m.attribute("unit").unwrap_or("KiB")))
        })
        .unwrap_or(0);
    let devices = child(root, "devices");
    let disks = devices
        .map(|d| {
            d.children()
                .filter(|n| n.has_tag_name("disk"))
                .map(parse_disk)
                .collect()
        })
        .unwrap_or_default();
    let interfaces = devices
        .map(|d| {
            d.children()
                .filter(|n| n.has_tag_name("interface"))
                .map(parse_interface)
                .collect()
        })
        .unwrap_or_default();
    let lock = child(root, "metadata").and_then(|m| {
        m.children()
            .find(|n| n.is_element() && n.tag_name().namespace() == Some(HERD_NS))
            .and_then(parse_lock_node)
    });
    let cpu = child(root, "cpu")
        .filter(|c| {
            let mode = c.attribute("mode").unwrap_or("custom");
            mode == "custom" && child(*c, "model").is_some()
        })
        .map(|c| xml[c.range()].to_string());
    let os_type = child(root, "os").and_then(|os| child(os, "type"));
    Ok(XmlDomain {
        name,
        uuid,
        memory,
        disks,
        interfaces,
        lock,
        cpu,
        arch: os_type
            .and_then(|t| t.attribute("arch"))
            .unwrap_or("x86_64")
            .to_string(),
        machine: os_type
            .and_then(|t| t.attribute("machine"))
            .map(String::from),
        virt_type: root.attribute("type").unwrap_or("qemu").to_string(),
        emulator: devices.and_then(|d| child_text(d, "emulator")),
    })
}

fn parse_disk(disk: Node) -> XmlDisk {
    let kind = disk.attribute("type").unwrap_or("file");
    let source = child(disk, "source");
    let attr = |name: &str| source.and_then(|s| s.attribute(name)).map(String::from);
    let source = match kind {
        "file" => attr("file").map(|path| DiskSource::File { path }),
        "block" => attr("dev").map(|dev| DiskSource::Block { dev }),
        "volume" => match (attr("pool"), attr("volume")) {
            (Some(pool), Some(volume)) => Some(DiskSource::Volume { pool, volume }),
            _ => None,
        },
        "network" => Some(DiskSource::Network {
            protocol: attr("protocol").unwrap_or_else(|| "network".into()),
        }),
        _ => None,
    }
    .unwrap_or(DiskSource::Empty);
    XmlDisk {
        target: child(disk, "target")
            .and_then(|t| t.attribute("dev"))
            .unwrap_or_default()
            .to_string(),
        device: disk.attribute("device").unwrap_or("disk").to_string(),
        source,
        format: child(disk, "driver")
            .and_then(|d| d.attribute("type"))
            .unwrap_or("raw")
            .to_string(),
        readonly: child(disk, "readonly").is_some(),
        shareable: child(disk, "shareable").is_some(),
    }
}

fn parse_interface(iface: Node) -> InterfaceFacts {
    let kind = iface.attribute("type").unwrap_or("");
    let source = child(iface, "source");
    match (kind, source) {
        ("network", Some(s)) if s.attribute("network").is_some() => InterfaceFacts::Network {
            network: s.attribute("network").unwrap_or_default().to_string(),
        },
        ("bridge", Some(s)) if s.attribute("bridge").is_some() => InterfaceFacts::Bridge {
            bridge: s.attribute("bridge").unwrap_or_default().to_string(),
        },
        _ => InterfaceFacts::Other {
            kind: kind.to_string(),
        },
    }
}

/// herd's lock element: `<lock owner='..' destination='..' since='..'>`
/// with one `<created volume='pool/name'/>` per destination volume created.
pub fn lock_element(lock: &LockFacts) -> String {
    let volumes = |tag: &str, list: &[String]| -> String {
        list.iter()
            .map(|v| format!("<{tag} volume='{}'/>", escape(v)))
            .collect()
    };
    let inventory = lock.inventory.as_ref().map_or(String::new(), |(from, to)| {
        format!("<inventory from='{}' to='{}'/>", escape(from), escape(to))
    });
    format!(
        "<lock owner='{}' destination='{}' source='{}' since='{}'>{}{}{inventory}</lock>",
        escape(&lock.owner),
        escape(&lock.destination),
        escape(&lock.source),
        lock.since,
        volumes("created", &lock.created),
        volumes("finish", &lock.finish),
    )
}

/// Parse what `virDomainGetMetadata` returns for herd's namespace.
pub fn parse_lock(xml: &str) -> Option<LockFacts> {
    let doc = Document::parse(xml).ok()?;
    parse_lock_node(doc.root_element())
}

fn parse_lock_node(node: Node) -> Option<LockFacts> {
    if node.tag_name().name() != "lock" {
        return None;
    }
    let volumes = |tag: &str| -> Vec<String> {
        node.children()
            .filter(|c| c.is_element() && c.tag_name().name() == tag)
            .filter_map(|c| c.attribute("volume").map(String::from))
            .collect()
    };
    Some(LockFacts {
        owner: node.attribute("owner").unwrap_or_default().to_string(),
        destination: node
            .attribute("destination")
            .unwrap_or_default()
            .to_string(),
        since: node
            .attribute("since")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        created: volumes("created"),
        source: node.attribute("source").unwrap_or_default().to_string(),
        finish: volumes("finish"),
        inventory: node
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == "inventory")
            .and_then(|c| Some((c.attribute("from")?.into(), c.attribute("to")?.into()))),
    })
}

/// A disk that moves to a new path, type or format on the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRewrite {
    pub target: String,
    pub path: String,
    /// `type='block'` with `<source dev=..>` instead of a file.
    pub block: bool,
    pub format: String,
}

/// The domain XML with each rewritten disk's type, driver format and source
/// replaced; everything else is kept byte for byte.
pub fn rewrite_disks(xml: &str, rewrites: &[DiskRewrite]) -> Result<String, XmlError> {
    let doc = Document::parse(xml)?;
    let devices = child(doc.root_element(), "devices").ok_or(XmlError::Missing("devices"))?;
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for rw in rewrites {
        let disk = devices
            .children()
            .filter(|n| n.has_tag_name("disk"))
            .find(|d| child(*d, "target").and_then(|t| t.attribute("dev")) == Some(&rw.target))
            .ok_or_else(|| XmlError::NoDisk(rw.target.clone()))?;
        let mut out = String::new();
        write_disk(disk, rw, &mut out);
        edits.push((disk.range(), out));
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut result = xml.to_string();
    for (range, text) in edits {
        result.replace_range(range, &text);
    }
    Ok(result)
}

fn write_disk(disk: Node, rw: &DiskRewrite, out: &mut String) {
    let kind = if rw.block { "block" } else { "file" };
    out.push_str("<disk");
    for a in disk.attributes() {
        let value = if a.name() == "type" { kind } else { a.value() };
        push_attr(out, a.name(), value);
    }
    out.push('>');
    for c in disk.children() {
        if c.is_element() && c.has_tag_name("source") {
            let attr = if rw.block { "dev" } else { "file" };
            out.push_str("<source");
            push_attr(out, attr, &rw.path);
            out.push_str("/>");
        } else if c.is_element() && c.has_tag_name("backingStore") {
            // The destination volume is a fresh, standalone image.
        } else if c.is_element() && c.has_tag_name("driver") {
            out.push_str("<driver");
            for a in c.attributes() {
                let value = if a.name() == "type" {
                    rw.format.as_str()
                } else {
                    a.value()
                };
                push_attr(out, a.name(), value);
            }
            out.push_str("/>");
        } else {
            write_node(c, out);
        }
    }
    out.push_str("</disk>");
}

fn write_node(node: Node, out: &mut String) {
    if node.is_text() {
        out.push_str(&escape(node.text().unwrap_or_default()));
        return;
    }
    if !node.is_element() {
        return;
    }
    let name = node.tag_name().name();
    out.push('<');
    out.push_str(name);
    for a in node.attributes() {
        push_attr(out, a.name(), a.value());
    }
    if node.children().next().is_none() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for c in node.children() {
        write_node(c, out);
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn push_attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("='");
    out.push_str(&escape(value));
    out.push('\'');
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// Facts from a storage pool's XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlPool {
    pub kind: String,
    pub path: String,
}

pub fn parse_pool(xml: &str) -> Result<XmlPool, XmlError> {
    let doc = Document::parse(xml)?;
    let root = doc.root_element();
    Ok(XmlPool {
        kind: root.attribute("type").unwrap_or("dir").to_string(),
        path: child(root, "target")
            .and_then(|t| child_text(t, "path"))
            .unwrap_or_default(),
    })
}

/// The format of a volume (`<target><format type='qcow2'/>`), `raw` if none.
pub fn parse_volume_format(xml: &str) -> Result<String, XmlError> {
    let doc = Document::parse(xml)?;
    Ok(child(doc.root_element(), "target")
        .and_then(|t| child(t, "format"))
        .and_then(|f| f.attribute("type"))
        .unwrap_or("raw")
        .to_string())
}

/// The bridge of a libvirt network, if it has one.
pub fn parse_network_bridge(xml: &str) -> Result<Option<String>, XmlError> {
    let doc = Document::parse(xml)?;
    Ok(child(doc.root_element(), "bridge")
        .and_then(|b| b.attribute("name"))
        .map(String::from))
}

/// `<volume>` XML that creates a sparse volume of this name, size and format.
pub fn volume_xml(name: &str, capacity: u64, format: &str) -> String {
    format!(
        "<volume><name>{}</name><capacity unit='bytes'>{capacity}</capacity>\
         <allocation unit='bytes'>0</allocation>\
         <target><format type='{}'/></target></volume>",
        escape(name),
        escape(format)
    )
}

/// The host UUID from `virConnectGetCapabilities`.
pub fn parse_host_uuid(caps: &str) -> Result<String, XmlError> {
    let doc = Document::parse(caps)?;
    child(doc.root_element(), "host")
        .and_then(|h| child_text(h, "uuid"))
        .ok_or(XmlError::Missing("host/uuid"))
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

fn child_text(node: Node, name: &str) -> Option<String> {
    child(node, name)
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string())
}

fn unit_factor(unit: &str) -> u64 {
    match unit {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "KiB" => 1024,
        "MB" => 1000 * 1000,
        "M" | "MiB" => 1024 * 1024,
        "GB" => 1000 * 1000 * 1000,
        "G" | "GiB" => 1024 * 1024 * 1024,
        _ => 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = r#"<domain type='qemu' id='3'>
  <name>vm1</name>
  <uuid>0a6f2a3c-6e5b-4f7e-9a53-0d1d5e0c9b11</uuid>
  <memory unit='KiB'>65536</memory>
  <metadata>
    <herd:lock xmlns:herd="https://herd.invalid/xmlns/migrate/1" owner="herd pid 7 on admin" destination="qemu:///b" since="1700000000"/>
  </metadata>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
  <cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model></cpu>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/libvirt/images/vm1.qcow2' index='1'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <interface type='network'><source network='default'/></interface>
    <interface type='bridge'><source bridge='br0'/></interface>
  </devices>
</domain>"#;

    #[test]
    fn domain_facts_are_read_from_the_xml() {
        let d = parse_domain(DOMAIN).unwrap();
        assert_eq!(d.name, "vm1");
        assert_eq!(d.memory, 64 * 1024 * 1024);
        assert_eq!(d.disks.len(), 2);
        assert_eq!(
            d.disks[0].source,
            DiskSource::File {
                path: "/var/lib/libvirt/images/vm1.qcow2".into()
            }
        );
        assert_eq!(d.disks[0].format, "qcow2");
        assert_eq!(d.disks[1].source, DiskSource::Empty);
        assert!(d.disks[1].readonly);
        assert_eq!(
            d.interfaces,
            vec![
                InterfaceFacts::Network {
                    network: "default".into()
                },
                InterfaceFacts::Bridge {
                    bridge: "br0".into()
                }
            ]
        );
        assert_eq!(d.lock.unwrap().owner, "herd pid 7 on admin");
        assert!(d.cpu.unwrap().contains("qemu64"));
        assert_eq!(d.machine.as_deref(), Some("pc-i440fx-7.2"));
    }

    #[test]
    fn rewriting_a_qcow2_file_disk_onto_a_block_device_changes_only_that_disk() {
        let out = rewrite_disks(
            DOMAIN,
            &[DiskRewrite {
                target: "vda".into(),
                path: "/dev/loop7".into(),
                block: true,
                format: "raw".into(),
            }],
        )
        .unwrap();
        let d = parse_domain(&out).unwrap();
        assert_eq!(
            d.disks[0].source,
            DiskSource::Block {
                dev: "/dev/loop7".into()
            }
        );
        assert_eq!(d.disks[0].format, "raw");
        assert!(
            out.contains("cache='none'"),
            "driver attributes kept: {out}"
        );
        assert!(!out.contains("backingStore"));
        assert!(out.contains("<alias name='virtio-disk0'/>"));
        // The rest of the document is untouched.
        let before = DOMAIN
            .split("<disk type='file' device='disk'>")
            .next()
            .unwrap();
        assert!(out.starts_with(before));
        assert!(out.contains("<disk type='file' device='cdrom'>"));
    }

    #[test]
    fn rewriting_a_disk_the_domain_lacks_is_an_error() {
        let err = rewrite_disks(
            DOMAIN,
            &[DiskRewrite {
                target: "vdz".into(),
                path: "/x".into(),
                block: false,
                format: "raw".into(),
            }],
        )
        .unwrap_err();
        assert!(matches!(err, XmlError::NoDisk(t) if t == "vdz"));
    }

    #[test]
    fn lock_element_round_trips() {
        let lock = LockFacts {
            owner: "herd pid 1 on a&b".into(),
            destination: "qemu+unix:///system?socket=/x".into(),
            since: 42,
            created: vec!["default/vm1.qcow2".into(), "default/vm1-b.qcow2".into()],
            source: "qemu:///system".into(),
            finish: vec!["images/vm1.qcow2".into()],
            inventory: Some(("hv'1".into(), "hv2".into())),
        };
        assert_eq!(parse_lock(&lock_element(&lock)), Some(lock));
    }

    #[test]
    fn a_lock_of_an_older_herd_still_reads() {
        let old = "<lock owner='herd pid 1 on a' destination='qemu:///b' since='7'>\
                   <created volume='default/vm1.qcow2'/></lock>";
        let lock = parse_lock(old).unwrap();
        assert_eq!(lock.created, ["default/vm1.qcow2"]);
        assert_eq!((lock.source.as_str(), lock.finish.len()), ("", 0));
        assert_eq!(lock.inventory, None);
    }

    #[test]
    fn volume_xml_asks_for_a_sparse_volume_of_the_source_format() {
        let xml = volume_xml("vm1.qcow2", 1 << 30, "qcow2");
        assert_eq!(parse_volume_format(&xml).unwrap(), "qcow2");
        assert!(xml.contains("<allocation unit='bytes'>0</allocation>"));
    }
}
