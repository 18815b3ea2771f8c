//! libvirt URIs, checked once.

use crate::VirtError;

/// A libvirt connection URI such as `qemu:///system`,
/// `qemu+ssh://root@hv1/system?socket=/var/run/libvirt/libvirt-sock` or
/// `qemu+unix:///system?socket=PATH`. Only the shape is checked here;
/// libvirt interprets the rest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LibvirtUri(String);

impl LibvirtUri {
    pub fn parse(text: &str) -> Result<Self, VirtError> {
        let bad = || VirtError::BadUri(text.to_string());
        let (scheme, rest) = text.split_once(':').ok_or_else(bad)?;
        let scheme_ok = !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-');
        if !scheme_ok || !rest.starts_with("//") || text.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        Ok(LibvirtUri(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI virsh would use: the one given, else `LIBVIRT_DEFAULT_URI`.
    /// `None` leaves the choice to libvirt (`uri_default` in libvirt.conf,
    /// then probing), exactly as virsh does.
    pub fn resolve(given: Option<&str>) -> Result<Option<LibvirtUri>, VirtError> {
        let env = std::env::var("LIBVIRT_DEFAULT_URI").ok();
        resolve_with(given, env.as_deref())
    }
}

/// The pure part of [`LibvirtUri::resolve`].
pub(crate) fn resolve_with(
    given: Option<&str>,
    env: Option<&str>,
) -> Result<Option<LibvirtUri>, VirtError> {
    match given.or(env.filter(|e| !e.is_empty())) {
        Some(uri) => LibvirtUri::parse(uri).map(Some),
        None => Ok(None),
    }
}

impl std::fmt::Display for LibvirtUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for LibvirtUri {
    type Error = VirtError;
    fn try_from(s: String) -> Result<Self, VirtError> {
        LibvirtUri::parse(&s)
    }
}

impl From<LibvirtUri> for String {
    fn from(u: LibvirtUri) -> String {
        u.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uris_operators_use_parse() {
        for uri in [
            "qemu:///system",
            "qemu+ssh://hv1/system?socket=/var/run/libvirt/libvirt-sock",
            "qemu+unix:///system?socket=/tmp/lab/hv1/sock/libvirt-sock",
            "test:///default",
        ] {
            assert_eq!(LibvirtUri::parse(uri).unwrap().as_str(), uri);
        }
    }

    #[test]
    fn hostnames_and_garbage_are_not_uris() {
        for text in [
            "hv1",
            "",
            "qemu:/system",
            "://x",
            "qemu:///sys tem",
            "q emu:///system",
        ] {
            assert!(LibvirtUri::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_given_uri_wins_over_libvirt_default_uri_like_virsh() {
        let env = Some("qemu+ssh://hv2/system");
        assert_eq!(
            resolve_with(Some("qemu:///system"), env)
                .unwrap()
                .unwrap()
                .as_str(),
            "qemu:///system"
        );
        assert_eq!(
            resolve_with(None, env).unwrap().unwrap().as_str(),
            "qemu+ssh://hv2/system"
        );
        assert_eq!(resolve_with(None, Some("")).unwrap(), None);
        assert_eq!(resolve_with(None, None).unwrap(), None);
    }
}
