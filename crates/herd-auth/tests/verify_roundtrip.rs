//! Sign with real ssh-keygen keys, verify, and pin every refusal.

mod common;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use common::*;
use herd_auth::{AuthError, KeyFileSigner, Settings, Signer, TokenOwner, TokenSigner, Via};
use ssh_key::encoding::Encode;
use ssh_key::{HashAlg, PrivateKey};

const PATH: &str = "/api/dataset/query?x=1";
const BODY: &[u8] = br#"{"filters":{"hostname":"vm1"}}"#;

fn signer(path: &std::path::Path) -> KeyFileSigner {
    KeyFileSigner::load(path, None).unwrap()
}

#[test]
fn every_key_type_signs_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = account("alice");
    let mut dir = MemDir::default();
    for (name, kind, bits) in [
        ("ed", "ed25519", None),
        ("p256", "ecdsa", Some(256)),
        ("p384", "ecdsa", Some(384)),
        ("p521", "ecdsa", Some(521)),
        ("rsa", "rsa", Some(2048)),
    ] {
        let key = keygen(tmp.path(), name, kind, bits, "");
        let fp = dir.add_key(&alice, &key);
        let headers = signer(&key).sign_request("POST", PATH, BODY).unwrap();
        let principal = check(&dir, &Settings::default(), &headers, "POST", PATH, BODY)
            .unwrap_or_else(|e| panic!("{kind} {bits:?}: {e}"));
        assert_eq!(principal.user.name, "alice");
        assert_eq!(principal.via, Via::Keys(vec![fp]));
    }
}

#[test]
fn passphrase_protected_key_file_needs_the_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let key = keygen(tmp.path(), "locked", "ed25519", None, "s3cret pass");
    assert!(matches!(
        KeyFileSigner::load(&key, None),
        Err(herd_auth::SignError::PassphraseNeeded { .. })
    ));
    assert!(matches!(
        KeyFileSigner::load(&key, Some("wrong")),
        Err(herd_auth::SignError::WrongPassphrase { .. })
    ));
    let mut dir = MemDir::default();
    dir.add_key(&account("alice"), &key);
    let headers = KeyFileSigner::load(&key, Some("s3cret pass"))
        .unwrap()
        .sign_request("GET", "/api/dataset/attributes", b"")
        .unwrap();
    check(
        &dir,
        &Settings::default(),
        &headers,
        "GET",
        "/api/dataset/attributes",
        b"",
    )
    .unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: MemDir,
    key: std::path::PathBuf,
    other: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let key = keygen(tmp.path(), "alice", "ed25519", None, "");
    let other = keygen(tmp.path(), "bob", "ed25519", None, "");
    let mut dir = MemDir::default();
    dir.add_key(&account("alice"), &key);
    Fixture {
        _tmp: tmp,
        dir,
        key,
        other,
    }
}

fn refused(
    f: &Fixture,
    headers: &[(String, String)],
    method: &str,
    path: &str,
    body: &[u8],
) -> AuthError {
    match check(&f.dir, &Settings::default(), headers, method, path, body) {
        Ok(p) => panic!("accepted as {p}"),
        Err(e) => e,
    }
}

#[test]
fn body_changed_after_signing_is_refused() {
    let f = fixture();
    let headers = signer(&f.key).sign_request("POST", PATH, BODY).unwrap();
    let err = refused(&f, &headers, "POST", PATH, br#"{"filters":{}}"#);
    assert!(matches!(err, AuthError::BadSignature { .. }), "{err}");
    assert_eq!(err.status(), 401);
    assert!(err.to_string().contains("request changed after signing"));
}

#[test]
fn path_or_method_changed_after_signing_is_refused() {
    let f = fixture();
    let headers = signer(&f.key).sign_request("POST", PATH, BODY).unwrap();
    assert!(matches!(
        refused(&f, &headers, "POST", "/api/dataset/commit", BODY),
        AuthError::BadSignature { .. }
    ));
    assert!(matches!(
        refused(&f, &headers, "PUT", PATH, BODY),
        AuthError::BadSignature { .. }
    ));
}

#[test]
fn replayed_nonce_is_refused() {
    let f = fixture();
    let headers = signer(&f.key).sign_request("POST", PATH, BODY).unwrap();
    check(&f.dir, &Settings::default(), &headers, "POST", PATH, BODY).unwrap();
    let err = refused(&f, &headers, "POST", PATH, BODY);
    assert!(matches!(err, AuthError::ReplayedNonce(_)), "{err}");
    assert!(err.to_string().contains("replayed request"));
}

#[test]
fn timestamp_outside_the_window_is_refused() {
    let f = fixture();
    let key = PrivateKey::read_openssh_file(&f.key).unwrap();
    let server_now = now();
    for skew in [-17, 17, -3600] {
        let ts = server_now + skew;
        let nonce = "00112233445566778899aabbccddeeff";
        let message = herd_auth::canonical::CanonicalRequest {
            method: "POST",
            path_and_query: PATH,
            timestamp: ts,
            nonce,
            body: BODY,
        }
        .to_bytes();
        let sig = key.sign("herd-api", HashAlg::Sha512, &message).unwrap();
        let headers = vec![
            ("X-Timestamp".to_string(), ts.to_string()),
            ("X-Nonce".to_string(), nonce.to_string()),
            (
                "X-Herd-Signatures".to_string(),
                STANDARD.encode(sig.encode_vec().unwrap()),
            ),
        ];
        let err = check_at(
            &f.dir,
            &Settings::default(),
            &headers,
            "POST",
            PATH,
            BODY,
            server_now,
        )
        .expect_err("a timestamp outside the window must be refused");
        assert!(matches!(err, AuthError::StaleTimestamp { .. }), "{err}");
        assert!(err.to_string().contains("allowed ±16 s"), "{err}");
    }
}

#[test]
fn unknown_key_is_refused() {
    let f = fixture();
    let headers = signer(&f.other).sign_request("POST", PATH, BODY).unwrap();
    let err = refused(&f, &headers, "POST", PATH, BODY);
    assert!(
        matches!(err, AuthError::UnknownKey { count: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("herd key add"));
}

#[test]
fn signature_by_another_key_is_refused() {
    // The SSHSIG claims alice's key but carries a signature made by bob's.
    let f = fixture();
    let alice = PrivateKey::read_openssh_file(&f.key).unwrap();
    let bob = PrivateKey::read_openssh_file(&f.other).unwrap();
    let ts = now();
    let nonce = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let message = herd_auth::canonical::CanonicalRequest {
        method: "POST",
        path_and_query: PATH,
        timestamp: ts,
        nonce,
        body: BODY,
    }
    .to_bytes();
    let by_bob = bob.sign("herd-api", HashAlg::Sha512, &message).unwrap();
    let forged = ssh_key::SshSig::new(
        alice.public_key().key_data().clone(),
        "herd-api",
        HashAlg::Sha512,
        by_bob.signature().clone(),
    )
    .unwrap();
    let headers = vec![
        ("X-Timestamp".to_string(), ts.to_string()),
        ("X-Nonce".to_string(), nonce.to_string()),
        (
            "X-Herd-Signatures".to_string(),
            STANDARD.encode(forged.encode_vec().unwrap()),
        ),
    ];
    let err = refused(&f, &headers, "POST", PATH, BODY);
    assert!(matches!(err, AuthError::BadSignature { .. }), "{err}");
}

#[test]
fn keys_of_two_users_in_one_request_are_refused() {
    let mut f = fixture();
    let bob_key = f.other.clone();
    f.dir.add_key(&account("bob"), &bob_key);
    let a = signer(&f.key).sign_request("POST", PATH, BODY).unwrap();
    let b = signer(&f.other).sign_request("POST", PATH, BODY).unwrap();
    // Put both signatures over alice's timestamp/nonce: bob's will be checked
    // after the owner check, which must refuse first.
    let mut headers = a.clone();
    let both = format!(
        "{},{}",
        get(&a, "X-Herd-Signatures"),
        get(&b, "X-Herd-Signatures")
    );
    set(&mut headers, "X-Herd-Signatures", &both);
    let err = refused(&f, &headers, "POST", PATH, BODY);
    assert!(matches!(err, AuthError::SeveralUsers(_)), "{err}");
    assert!(err.to_string().contains("alice, bob"));
}

#[test]
fn disabled_user_is_refused_with_403() {
    let mut f = fixture();
    for user in f.dir.keys.values_mut() {
        user.disabled = true;
    }
    let headers = signer(&f.key).sign_request("POST", PATH, BODY).unwrap();
    let err = refused(&f, &headers, "POST", PATH, BODY);
    assert!(
        matches!(err, AuthError::UserDisabled(ref u) if u == "alice"),
        "{err}"
    );
    assert_eq!(err.status(), 403);
}

#[test]
fn missing_timestamp_is_401() {
    let f = fixture();
    let mut headers = signer(&f.key).sign_request("POST", PATH, BODY).unwrap();
    headers.retain(|(k, _)| k != "X-Timestamp");
    let err = refused(&f, &headers, "POST", PATH, BODY);
    assert!(
        matches!(err, AuthError::MissingHeader("X-Timestamp")),
        "{err}"
    );
    assert_eq!(err.status(), 401);
}

#[test]
fn missing_or_malformed_headers_are_401_with_the_header_named() {
    let f = fixture();
    let good = signer(&f.key).sign_request("POST", PATH, BODY).unwrap();
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (vec![], "the request is not signed"),
        (
            {
                let mut h = good.clone();
                h.retain(|(k, _)| k != "X-Nonce");
                h
            },
            "missing header X-Nonce",
        ),
        (
            {
                let mut h = good.clone();
                set(&mut h, "X-Timestamp", "yesterday");
                h
            },
            "malformed header X-Timestamp",
        ),
        (
            {
                let mut h = good.clone();
                set(&mut h, "X-Herd-Signatures", "!!!not base64");
                h
            },
            "malformed header X-Herd-Signatures",
        ),
        (
            {
                let mut h = good.clone();
                set(&mut h, "X-Herd-Signatures", &STANDARD.encode(b"garbage"));
                h
            },
            "not an SSHSIG blob",
        ),
        (
            {
                let mut h = good.clone();
                set(&mut h, "X-Nonce", "short");
                h
            },
            "malformed header X-Nonce",
        ),
        (
            vec![
                ("X-Timestamp".into(), now().to_string()),
                ("X-PublicKeys".into(), "AAAA".into()),
            ],
            "missing header X-Signatures",
        ),
        (
            {
                let mut h = good.clone();
                h.push(("X-SecurityToken".into(), "00".into()));
                h
            },
            "several schemes",
        ),
    ];
    for (headers, expect) in cases {
        let err = refused(&f, &headers, "POST", PATH, BODY);
        assert_eq!(err.status(), 401, "{err}");
        assert!(
            err.to_string().contains(expect),
            "{err} should contain {expect}"
        );
    }
}

#[test]
fn more_than_twenty_keys_are_refused() {
    let f = fixture();
    let headers = signer(&f.key).sign_request("POST", PATH, BODY).unwrap();
    let one = get(&headers, "X-Herd-Signatures").to_string();
    let mut many = headers.clone();
    set(&mut many, "X-Herd-Signatures", &vec![one; 21].join(","));
    let err = refused(&f, &many, "POST", PATH, BODY);
    assert!(
        matches!(err, AuthError::TooManyKeys { count: 21, max: 20 }),
        "{err}"
    );
}

#[test]
fn wrong_namespace_is_refused() {
    let f = fixture();
    let key = PrivateKey::read_openssh_file(&f.key).unwrap();
    let ts = now();
    let nonce = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    let message = herd_auth::canonical::CanonicalRequest {
        method: "GET",
        path_and_query: "/",
        timestamp: ts,
        nonce,
        body: b"",
    }
    .to_bytes();
    let sig = key.sign("file", HashAlg::Sha512, &message).unwrap();
    let headers = vec![
        ("X-Timestamp".to_string(), ts.to_string()),
        ("X-Nonce".to_string(), nonce.to_string()),
        (
            "X-Herd-Signatures".to_string(),
            STANDARD.encode(sig.encode_vec().unwrap()),
        ),
    ];
    let err = refused(&f, &headers, "GET", "/", b"");
    assert!(
        matches!(err, AuthError::WrongNamespace(ref n) if n == "file"),
        "{err}"
    );
}

fn token_dir(token: &str) -> MemDir {
    let mut dir = MemDir::default();
    dir.tokens.insert(
        herd_auth::verify::token_app_id(token),
        TokenOwner {
            name: "deploy".into(),
            secret: token.into(),
            user: account("ci"),
        },
    );
    dir
}

/// A new token registered for `ci`, and a request signed with it.
fn token_request() -> (MemDir, Vec<(String, String)>) {
    let token = herd_auth::signer::new_token().unwrap();
    let dir = token_dir(&token);
    let headers = TokenSigner::new(&token)
        .unwrap()
        .sign_request("POST", PATH, BODY)
        .unwrap();
    (dir, headers)
}

#[test]
fn herd_token_signs_and_verifies_and_is_not_replayable() {
    let (dir, headers) = token_request();
    let p = check(&dir, &Settings::default(), &headers, "POST", PATH, BODY).unwrap();
    assert_eq!(p.to_string(), "ci (token deploy)");
    let err = check(&dir, &Settings::default(), &headers, "POST", PATH, BODY).unwrap_err();
    assert!(matches!(err, AuthError::ReplayedNonce(_)), "{err}");
    let wrong = TokenSigner::new("not-the-token")
        .unwrap()
        .sign_request("POST", PATH, BODY)
        .unwrap();
    let err = check(&dir, &Settings::default(), &wrong, "POST", PATH, BODY).unwrap_err();
    assert!(matches!(err, AuthError::UnknownToken(_)), "{err}");
}

#[test]
fn serveradmin_token_scheme_matches_adminapi() {
    use hmac::{Hmac, KeyInit, Mac};
    let token = "sekrit-token";
    let dir = token_dir(token);
    let ts = now();
    let message = format!("{ts}:{}", std::str::from_utf8(BODY).unwrap());
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    let headers = vec![
        ("X-Timestamp".to_string(), ts.to_string()),
        (
            "X-Application".to_string(),
            herd_auth::verify::token_app_id(token),
        ),
        (
            "X-SecurityToken".to_string(),
            hex::encode(mac.finalize().into_bytes()),
        ),
    ];
    check(&dir, &Settings::default(), &headers, "POST", PATH, BODY).unwrap();
    let err = check(&dir, &Settings::default(), &headers, "POST", PATH, b"{}").unwrap_err();
    assert!(matches!(err, AuthError::BadTokenMac), "{err}");
    let off = Settings {
        serveradmin_schemes: false,
        ..Settings::default()
    };
    let err = check(&dir, &off, &headers, "POST", PATH, BODY).unwrap_err();
    assert!(matches!(err, AuthError::ServeradminSchemeOff), "{err}");
    // No nonce in this scheme, so a replay memory that starts later does
    // not make it any less (or more) acceptable.
    let later = Settings {
        nonces_since: Some(ts + 5),
        ..Settings::default()
    };
    check(&dir, &later, &headers, "POST", PATH, BODY).unwrap();
}

#[test]
fn a_nonce_older_than_the_replay_memory_is_refused() {
    let (dir, headers) = token_request();
    let ts: i64 = get(&headers, "X-Timestamp").parse().unwrap();
    let started_after = Settings {
        nonces_since: Some(ts + 1),
        ..Settings::default()
    };
    let err = check(&dir, &started_after, &headers, "POST", PATH, BODY).unwrap_err();
    assert!(
        matches!(err, AuthError::SignedBeforeStart { since, .. } if since == ts + 1),
        "{err}"
    );
    assert_eq!(err.status(), 401);
    let started_at = Settings {
        nonces_since: Some(ts),
        ..Settings::default()
    };
    check(&dir, &started_at, &headers, "POST", PATH, BODY).unwrap();
}

#[test]
fn slow_signing_is_redone_with_a_fresh_timestamp() {
    use std::cell::Cell;
    let clock = Cell::new(1000i64);
    let calls = Cell::new(0);
    let headers = herd_auth::signer::sign_fresh(&|| clock.get(), |ts, _nonce| {
        calls.set(calls.get() + 1);
        // The first signature takes 30 s (a congested hardware key).
        clock.set(ts + if calls.get() == 1 { 30 } else { 1 });
        Ok(vec![])
    })
    .unwrap();
    assert_eq!(calls.get(), 2);
    assert_eq!(get(&headers, "X-Timestamp"), "1030");

    let always_slow = herd_auth::signer::sign_fresh(&|| clock.get(), |ts, _| {
        clock.set(ts + 60);
        Ok(vec![])
    });
    assert!(matches!(
        always_slow,
        Err(herd_auth::SignError::TooSlow { .. })
    ));
}
