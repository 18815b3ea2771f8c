use herd_client::ClientError;
use herd_migrate::gather::GatherError;
use herd_migrate::place::NoDestination;

/// Why an inventory or fleet operation failed. Each message says what to
/// do next.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The inventory refused or could not answer.
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(
        "{name} has no libvirt_uri in the inventory; pass a libvirt URI to --on, \
         or register it with `herd hv bootstrap URI --name {name}`"
    )]
    NoLibvirtUri { name: String },
    #[error(
        "{uri} is not a hypervisor in the inventory; register it with \
         `herd hv bootstrap '{uri}' --name NAME`"
    )]
    UnknownUri { uri: String },
    #[error(
        "{name} exists in the inventory as a {servertype}, not a hypervisor; \
         pass --name with another hostname"
    )]
    NotAHypervisor { name: String, servertype: String },
    /// libvirt changed, the inventory commit failed.
    #[error("libvirt has the change but the inventory does not; `herd vm sync` repairs {vm}")]
    NotRecorded { vm: String, source: ClientError },
    /// The facts of a migration could not be gathered.
    #[error(transparent)]
    Gather(#[from] GatherError),
    /// Every candidate destination refused the VM.
    #[error(transparent)]
    NoDestination(#[from] NoDestination),
}
