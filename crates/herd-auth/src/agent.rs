//! A minimal ssh-agent client (draft-miller-ssh-agent): list identities
//! (messages 11/12) and sign (13/14, flags 2 = rsa-sha2-256, 4 = rsa-sha2-512).

use ssh_key::encoding::{Decode, Encode};
use ssh_key::public::KeyData;
use ssh_key::Signature;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

const FAILURE: u8 = 5;
const REQUEST_IDENTITIES: u8 = 11;
const IDENTITIES_ANSWER: u8 = 12;
const SIGN_REQUEST: u8 = 13;
const SIGN_RESPONSE: u8 = 14;
/// Ask for rsa-sha2-256 instead of ssh-rsa.
pub const FLAG_RSA_SHA2_256: u32 = 2;
/// Ask for rsa-sha2-512 instead of ssh-rsa.
pub const FLAG_RSA_SHA2_512: u32 = 4;
/// Largest agent reply accepted (OpenSSH's own limit).
const MAX_REPLY: usize = 256 * 1024;

/// A protocol-level failure talking to the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent socket I/O")]
    Io(#[from] std::io::Error),
    #[error("the agent refused the request")]
    Refused,
    #[error("unexpected agent reply (type {0})")]
    UnexpectedReply(u8),
    #[error("agent reply of {0} bytes is larger than allowed")]
    TooLarge(usize),
    #[error("cannot decode agent reply: {0}")]
    Decode(String),
}

/// One key the agent holds. `key` is `None` when herd cannot parse it
/// (certificates, unknown algorithms); such keys are skipped with a note.
#[derive(Debug, Clone)]
pub struct Identity {
    pub blob: Vec<u8>,
    pub key: Option<KeyData>,
    pub comment: String,
}

/// A connection to a running ssh-agent.
pub struct Agent {
    stream: UnixStream,
}

impl Agent {
    /// Connect to the agent's socket (usually `$SSH_AUTH_SOCK`).
    pub fn connect(path: &Path) -> std::io::Result<Agent> {
        Ok(Agent {
            stream: UnixStream::connect(path)?,
        })
    }

    /// The keys the agent holds.
    pub fn identities(&mut self) -> Result<Vec<Identity>, AgentError> {
        let reply = self.call(&[REQUEST_IDENTITIES])?;
        let (kind, mut body) = split_reply(&reply)?;
        if kind != IDENTITIES_ANSWER {
            return Err(AgentError::UnexpectedReply(kind));
        }
        let count = u32::decode(&mut body).map_err(decode_err)?;
        let mut out = Vec::new();
        for _ in 0..count {
            let blob = Vec::<u8>::decode(&mut body).map_err(decode_err)?;
            let comment = String::decode(&mut body).map_err(decode_err)?;
            let key = KeyData::decode(&mut blob.as_slice()).ok();
            out.push(Identity { blob, key, comment });
        }
        Ok(out)
    }

    /// Sign `data` with the key whose public blob is `blob`.
    pub fn sign(&mut self, blob: &[u8], data: &[u8], flags: u32) -> Result<Signature, AgentError> {
        let mut msg = vec![SIGN_REQUEST];
        blob.encode(&mut msg).map_err(decode_err)?;
        data.encode(&mut msg).map_err(decode_err)?;
        flags.encode(&mut msg).map_err(decode_err)?;
        let reply = self.call(&msg)?;
        let (kind, mut body) = split_reply(&reply)?;
        match kind {
            SIGN_RESPONSE => {
                let sig = Vec::<u8>::decode(&mut body).map_err(decode_err)?;
                Signature::try_from(sig.as_slice()).map_err(decode_err)
            }
            FAILURE => Err(AgentError::Refused),
            other => Err(AgentError::UnexpectedReply(other)),
        }
    }

    fn call(&mut self, msg: &[u8]) -> Result<Vec<u8>, AgentError> {
        let len = u32::try_from(msg.len()).map_err(|_| AgentError::TooLarge(msg.len()))?;
        self.stream.write_all(&len.to_be_bytes())?;
        self.stream.write_all(msg)?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_REPLY {
            return Err(AgentError::TooLarge(len));
        }
        let mut reply = vec![0u8; len];
        self.stream.read_exact(&mut reply)?;
        Ok(reply)
    }
}

fn split_reply(reply: &[u8]) -> Result<(u8, &[u8]), AgentError> {
    match reply.split_first() {
        Some((kind, body)) => Ok((*kind, body)),
        None => Err(AgentError::Decode("empty reply".into())),
    }
}

fn decode_err(e: impl std::fmt::Display) -> AgentError {
    AgentError::Decode(e.to_string())
}
