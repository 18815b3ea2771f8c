//! libvirt XML: what herd generates (domains, volumes, the default pool and
//! network) and what it reads back (capabilities, domains, pools, volumes).
//! Pure functions only; no libvirt here.

use serde::Serialize;

/// How the guest's CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainType {
    /// Hardware virtualization (`<domain type='kvm'>`), needs `/dev/kvm`.
    Kvm,
    /// Emulation with QEMU's TCG (`<domain type='qemu'>`), runs anywhere.
    Qemu,
}

impl DomainType {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainType::Kvm => "kvm",
            DomainType::Qemu => "qemu",
        }
    }
}

/// The disk image format of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeFormat {
    Qcow2,
    Raw,
}

impl VolumeFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeFormat::Qcow2 => "qcow2",
            VolumeFormat::Raw => "raw",
        }
    }
}

/// The guest's network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "source")]
pub enum Nic {
    /// No interface at all.
    None,
    /// A libvirt network (`<interface type='network'>`).
    Network(String),
    /// A host bridge (`<interface type='bridge'>`).
    Bridge(String),
    /// macvtap on a host device in bridge mode (`<interface type='direct'>`).
    Macvtap(String),
}

/// One disk of a new domain: a file (a volume's path) on a virtio bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskSpec {
    /// `vda`, `vdb`, ...
    pub target: String,
    /// The volume's path on the hypervisor.
    pub path: String,
    pub format: VolumeFormat,
}

/// A new domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainSpec {
    pub name: String,
    pub domain_type: DomainType,
    /// Memory in bytes (rounded up to KiB in the XML).
    pub memory: u64,
    pub vcpus: u32,
    pub disks: Vec<DiskSpec>,
    pub nic: Nic,
}

/// A new volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSpec {
    pub name: String,
    /// Size the guest sees, in bytes.
    pub capacity: u64,
    pub format: VolumeFormat,
}

/// Domain XML for `virDomainDefineXML`: a plain x86_64 guest booting from
/// its first disk, serial console on a pty, no graphics.
pub fn domain_xml(spec: &DomainSpec) -> String {
    let kib = spec.memory.div_ceil(1024);
    let mut x = String::new();
    x.push_str(&format!(
        "<domain type='{}'>\n  <name>{}</name>\n",
        spec.domain_type.as_str(),
        esc(&spec.name)
    ));
    x.push_str(&format!(
        "  <memory unit='KiB'>{kib}</memory>\n  <currentMemory unit='KiB'>{kib}</currentMemory>\n"
    ));
    x.push_str(&format!(
        "  <vcpu placement='static'>{}</vcpu>\n",
        spec.vcpus
    ));
    x.push_str("  <os>\n    <type arch='x86_64'>hvm</type>\n    <boot dev='hd'/>\n  </os>\n");
    x.push_str("  <features>\n    <acpi/>\n    <apic/>\n  </features>\n");
    if spec.domain_type == DomainType::Kvm {
        x.push_str("  <cpu mode='host-model'/>\n");
    }
    x.push_str("  <clock offset='utc'/>\n");
    x.push_str("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n");
    x.push_str("  <devices>\n");
    for d in &spec.disks {
        x.push_str(&format!(
            "    <disk type='file' device='disk'>\n      <driver name='qemu' type='{}' discard='unmap'/>\n      <source file='{}'/>\n      <target dev='{}' bus='virtio'/>\n    </disk>\n",
            d.format.as_str(),
            esc(&d.path),
            esc(&d.target)
        ));
    }
    match &spec.nic {
        Nic::None => {}
        Nic::Network(n) => x.push_str(&interface("network", &format!("network='{}'", esc(n)))),
        Nic::Bridge(b) => x.push_str(&interface("bridge", &format!("bridge='{}'", esc(b)))),
        Nic::Macvtap(d) => x.push_str(&interface(
            "direct",
            &format!("dev='{}' mode='bridge'", esc(d)),
        )),
    }
    x.push_str("    <serial type='pty'>\n      <target port='0'/>\n    </serial>\n");
    x.push_str(
        "    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n",
    );
    x.push_str("    <memballoon model='virtio'/>\n");
    x.push_str("  </devices>\n</domain>\n");
    x
}

fn interface(kind: &str, source: &str) -> String {
    format!(
        "    <interface type='{kind}'>\n      <source {source}/>\n      <model type='virtio'/>\n    </interface>\n"
    )
}

/// Volume XML for `virStorageVolCreateXML`: allocation 0, so the file is
/// sparse (raw) or a bare qcow2 header, whatever the capacity.
pub fn volume_xml(spec: &VolumeSpec) -> String {
    format!(
        "<volume>\n  <name>{}</name>\n  <capacity unit='bytes'>{}</capacity>\n  <allocation unit='bytes'>0</allocation>\n  <target>\n    <format type='{}'/>\n  </target>\n</volume>\n",
        esc(&spec.name),
        spec.capacity,
        spec.format.as_str()
    )
}

/// A `dir` storage pool at `path` (what `virsh pool-define-as NAME dir
/// --target PATH` defines).
pub fn dir_pool_xml(name: &str, path: &str) -> String {
    format!(
        "<pool type='dir'>\n  <name>{}</name>\n  <target>\n    <path>{}</path>\n  </target>\n</pool>\n",
        esc(name),
        esc(path)
    )
}

/// libvirt's stock `default` network: NAT on virbr0, 192.168.122.0/24.
pub fn default_network_xml() -> String {
    "<network>\n  <name>default</name>\n  <forward mode='nat'/>\n  <bridge name='virbr0' stp='on' delay='0'/>\n  <ip address='192.168.122.1' netmask='255.255.255.0'>\n    <dhcp>\n      <range start='192.168.122.2' end='192.168.122.254'/>\n    </dhcp>\n  </ip>\n</network>\n"
        .to_string()
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

// ---- reading libvirt's XML ----

/// What herd reads from `virConnectGetCapabilities`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub host_uuid: String,
    pub arch: String,
    pub cpu_model: Option<String>,
    /// An x86_64 guest can run with `type='kvm'` on this host.
    pub kvm: bool,
}

pub fn parse_capabilities(xml: &str) -> Result<Capabilities, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    let host = child(root, "host").ok_or("no <host>")?;
    let host_uuid = child(host, "uuid")
        .and_then(|n| n.text())
        .ok_or("no <host><uuid>")?
        .trim()
        .to_string();
    let cpu = child(host, "cpu");
    let arch = cpu
        .and_then(|c| child(c, "arch"))
        .and_then(|n| n.text())
        .unwrap_or("x86_64")
        .to_string();
    let cpu_model = cpu
        .and_then(|c| child(c, "model"))
        .and_then(|n| n.text())
        .map(str::to_string);
    let kvm = root
        .children()
        .filter(|n| n.has_tag_name("guest"))
        .filter_map(|g| child(g, "arch"))
        .filter(|a| a.attribute("name") == Some("x86_64"))
        .flat_map(|a| a.children().filter(|n| n.has_tag_name("domain")))
        .any(|d| d.attribute("type") == Some("kvm"));
    Ok(Capabilities {
        host_uuid,
        arch,
        cpu_model,
        kvm,
    })
}

/// A disk as the domain XML describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XmlDisk {
    /// `disk`, `cdrom`, ...
    pub device: String,
    /// `file`, `block`, `volume`, `network`.
    pub kind: String,
    pub target: String,
    /// Path of a file or block source.
    pub path: Option<String>,
    /// Pool and volume of a `type='volume'` source.
    pub pool: Option<String>,
    pub volume: Option<String>,
    /// `<driver type=...>`: qcow2, raw.
    pub format: Option<String>,
}

/// An interface as the domain XML describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XmlInterface {
    /// `network`, `bridge`, `direct`, `user`, ...
    pub kind: String,
    /// The network name, bridge or host device.
    pub source: Option<String>,
    /// For an active network interface: the bridge it is plugged into.
    pub bridge: Option<String>,
    pub mac: Option<String>,
    pub model: Option<String>,
}

/// What herd reads from a domain's XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlDomain {
    pub name: String,
    pub uuid: String,
    pub domain_type: String,
    /// Memory in bytes.
    pub memory: u64,
    pub vcpus: u32,
    pub disks: Vec<XmlDisk>,
    pub interfaces: Vec<XmlInterface>,
}

pub fn parse_domain(xml: &str) -> Result<XmlDomain, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    let text = |name: &str| child(root, name).and_then(|n| n.text()).map(str::trim);
    let memory_node = child(root, "memory").ok_or("no <memory>")?;
    let memory = scaled(
        memory_node.text().unwrap_or("0"),
        memory_node.attribute("unit").unwrap_or("KiB"),
    )
    .ok_or("bad <memory>")?;
    let vcpus = text("vcpu")
        .and_then(|v| v.parse().ok())
        .ok_or("bad <vcpu>")?;
    let devices = child(root, "devices");
    let disks = devices
        .into_iter()
        .flat_map(|d| d.children().filter(|n| n.has_tag_name("disk")))
        .map(|d| {
            let source = child(d, "source");
            let attr = |name: &str| source.and_then(|s| s.attribute(name)).map(str::to_string);
            XmlDisk {
                device: d.attribute("device").unwrap_or("disk").to_string(),
                kind: d.attribute("type").unwrap_or("file").to_string(),
                target: child(d, "target")
                    .and_then(|t| t.attribute("dev"))
                    .unwrap_or_default()
                    .to_string(),
                path: attr("file").or_else(|| attr("dev")),
                pool: attr("pool"),
                volume: attr("volume"),
                format: child(d, "driver")
                    .and_then(|t| t.attribute("type"))
                    .map(str::to_string),
            }
        })
        .collect();
    let interfaces = devices
        .into_iter()
        .flat_map(|d| d.children().filter(|n| n.has_tag_name("interface")))
        .map(|i| {
            let source = child(i, "source");
            let attr = |name: &str| source.and_then(|s| s.attribute(name)).map(str::to_string);
            XmlInterface {
                kind: i.attribute("type").unwrap_or_default().to_string(),
                source: attr("network")
                    .or_else(|| attr("bridge"))
                    .or_else(|| attr("dev")),
                bridge: attr("bridge"),
                mac: child(i, "mac")
                    .and_then(|m| m.attribute("address"))
                    .map(str::to_string),
                model: child(i, "model")
                    .and_then(|m| m.attribute("type"))
                    .map(str::to_string),
            }
        })
        .collect();
    Ok(XmlDomain {
        name: text("name").ok_or("no <name>")?.to_string(),
        uuid: text("uuid").unwrap_or_default().to_string(),
        domain_type: root.attribute("type").unwrap_or_default().to_string(),
        memory,
        vcpus,
        disks,
        interfaces,
    })
}

/// A pool's type and target path.
pub fn parse_pool(xml: &str) -> Result<(String, String), String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    let kind = root.attribute("type").unwrap_or_default().to_string();
    let path = child(root, "target")
        .and_then(|t| child(t, "path"))
        .and_then(|p| p.text())
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok((kind, path))
}

/// A volume's format (`qcow2`, `raw`), when it has one.
pub fn parse_volume_format(xml: &str) -> Result<Option<String>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    Ok(child(doc.root_element(), "target")
        .and_then(|t| child(t, "format"))
        .and_then(|f| f.attribute("type"))
        .map(str::to_string))
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(name))
}

/// A number in libvirt's scaled units, in bytes.
fn scaled(value: &str, unit: &str) -> Option<u64> {
    let n: u64 = value.trim().parse().ok()?;
    let m: u64 = match unit {
        "b" | "bytes" => 1,
        "KB" => 1_000,
        "k" | "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "T" | "TiB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(m)
}

#[cfg(test)]
mod tests;
