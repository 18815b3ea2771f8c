//! The exact bytes each scheme signs. Pure functions, no clock, no I/O.

use ssh_key::sha2::{Digest, Sha256};

/// SSHSIG namespace of herd's own scheme (`ssh-keygen -Y sign -n herd-api`).
pub const NAMESPACE: &str = "herd-api";

/// First line of the canonical request; a later format gets a new line.
pub const VERSION_LINE: &str = "herd-api-v1";

/// What herd's own scheme signs: everything that decides what a request does.
///
/// The signed text is six lines, each ending in `\n`:
///
/// ```text
/// herd-api-v1
/// POST
/// /api/dataset/query?x=1
/// 1764778800
/// 6f1c0e3d9a2b4c5d8e7f6a5b4c3d2e1f
/// 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
/// ```
///
/// method (upper case, as sent), path with its query string exactly as sent,
/// the `X-Timestamp` value, the `X-Nonce` value, and the lower-case hex
/// SHA-256 of the body (of the empty string when there is none).
#[derive(Debug, Clone, Copy)]
pub struct CanonicalRequest<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub timestamp: i64,
    pub nonce: &'a str,
    pub body: &'a [u8],
}

impl CanonicalRequest<'_> {
    /// The bytes that are signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{VERSION_LINE}\n{}\n{}\n{}\n{}\n{}\n",
            self.method,
            self.path_and_query,
            self.timestamp,
            self.nonce,
            sha256_hex(self.body)
        )
        .into_bytes()
    }
}

/// serveradmin's message: `"<ts>:<body>"`, or just `"<ts>"` without a body
/// (adminapi's `calc_message`). It covers neither method nor path.
pub fn serveradmin_message(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut message = timestamp.to_string().into_bytes();
    if !body.is_empty() {
        message.push(b':');
        message.extend_from_slice(body);
    }
    message
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_request_is_six_newline_terminated_lines() {
        let text = CanonicalRequest {
            method: "POST",
            path_and_query: "/api/dataset/query?a=1&b=2",
            timestamp: 1_764_778_800,
            nonce: "00112233445566778899aabbccddeeff",
            body: b"{}",
        }
        .to_bytes();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "herd-api-v1\nPOST\n/api/dataset/query?a=1&b=2\n1764778800\n\
             00112233445566778899aabbccddeeff\n\
             44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\n"
        );
    }

    #[test]
    fn empty_body_hashes_the_empty_string() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn serveradmin_message_omits_colon_without_body() {
        assert_eq!(serveradmin_message(17, b""), b"17");
        assert_eq!(serveradmin_message(17, b"{\"a\":1}"), b"17:{\"a\":1}");
    }
}
