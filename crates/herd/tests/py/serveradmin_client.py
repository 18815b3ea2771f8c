#!/usr/bin/env python3
"""A serveradmin-style client (adminapi's scheme) built on paramiko.

Signs "<ts>:<body>" (or "<ts>" without a body) with paramiko's
sign_ssh_data, as serveradmin's adminapi does, and either prints the
headers as JSON or sends the request.

  serveradmin_client.py headers --key FILE [--rsa-algorithm rsa-sha2-512] [--body TEXT]
  serveradmin_client.py headers --agent [--rsa-algorithm ...] [--body TEXT]
  serveradmin_client.py send URL PATH --key FILE [--body TEXT]   # prints status, then body
"""
import argparse
import base64
import json
import sys
import time
import urllib.error
import urllib.request

import paramiko
from paramiko.message import Message


def load_private_key(path, password=None):
    # adminapi tries every key class in turn.
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key_file(path, password=password)
        except paramiko.ssh_exception.PasswordRequiredException:
            raise
        except paramiko.SSHException:
            continue
    raise SystemExit("cannot load private key " + path)


def sign(key, message, rsa_algorithm):
    if key.get_name() == "ssh-rsa" and rsa_algorithm == "ssh-rsa":
        # RSA with SHA-1, what old paramiko (< 2.9) and old agents send.
        # paramiko 4+ no longer offers it, so build it from the raw key.
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        raw = key.key.sign(message, padding.PKCS1v15(), hashes.SHA1())
        m = Message()
        m.add_string("ssh-rsa")
        m.add_string(raw)
        return m.asbytes()
    if key.get_name() == "ssh-rsa" and rsa_algorithm:
        sig = key.sign_ssh_data(message, algorithm=rsa_algorithm)
    else:
        sig = key.sign_ssh_data(message)
    if isinstance(sig, Message):
        sig = sig.asbytes()
    return sig


def auth_headers(keys, body, rsa_algorithm):
    ts = int(time.time())
    message = str(ts).encode() + (b":" + body if body else b"")
    public, sigs = [], []
    for key in keys:
        public.append(base64.b64encode(key.asbytes()).decode())
        sigs.append(base64.b64encode(sign(key, message, rsa_algorithm)).decode())
    return {
        "X-Timestamp": str(ts),
        "X-PublicKeys": ",".join(public),
        "X-Signatures": ",".join(sigs),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["headers", "send"])
    p.add_argument("url", nargs="?")
    p.add_argument("path", nargs="?")
    p.add_argument("--key", action="append", default=[])
    p.add_argument("--agent", action="store_true")
    p.add_argument("--rsa-algorithm", default=None)
    p.add_argument("--body", default="")
    a = p.parse_args()
    if a.agent:
        keys = list(paramiko.Agent().get_keys())
    else:
        keys = [load_private_key(k) for k in a.key]
    body = a.body.encode()
    headers = auth_headers(keys, body, a.rsa_algorithm)
    if a.mode == "headers":
        json.dump(headers, sys.stdout)
        return
    headers["Content-Type"] = "application/x-json"
    req = urllib.request.Request(a.url + a.path, data=body or None, headers=headers,
                                 method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            print(resp.status)
            print(resp.read().decode())
    except urllib.error.HTTPError as e:
        print(e.code)
        print(e.read().decode())


if __name__ == "__main__":
    main()
