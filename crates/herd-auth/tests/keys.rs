//! Registering public keys: what is accepted, what is refused and why.

mod common;

use common::keygen;
use herd_auth::keys::{parse_public_key, KeyError};
use std::process::Command;

fn pubkey(path: &std::path::Path) -> String {
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

#[test]
fn fingerprint_matches_ssh_keygen_l() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, kind, bits) in [
        ("ed", "ed25519", None),
        ("ec", "ecdsa", Some(521)),
        ("rsa", "rsa", Some(2048)),
    ] {
        let key = keygen(tmp.path(), name, kind, bits, "");
        let accepted = parse_public_key(&format!("# a comment\n\n{}", pubkey(&key))).unwrap();
        let out = Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(key.with_extension("pub"))
            .output()
            .unwrap();
        let expected = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        assert_eq!(accepted.fingerprint, expected, "{kind}");
        assert!(
            accepted.openssh.ends_with(name),
            "comment kept: {}",
            accepted.openssh
        );
    }
}

#[test]
fn short_rsa_keys_and_garbage_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let weak = keygen(tmp.path(), "weak", "rsa", Some(1024), "");
    assert!(matches!(
        parse_public_key(&pubkey(&weak)),
        Err(KeyError::RsaTooShort(1024))
    ));
    assert!(matches!(
        parse_public_key("ssh-ed25519 not-base64"),
        Err(KeyError::Parse(_))
    ));
    assert!(matches!(parse_public_key(""), Err(KeyError::Parse(_))));
}
