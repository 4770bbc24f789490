"""SSH keys made for a test: OpenSSH public key lines and private keys in PEM."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519


def public_line(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> str:
    """The key's public half as an OpenSSH line, ``<type> <base64>``."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def host_key_line() -> str:
    """A new Ed25519 host key as ``ssh_host_ed25519_key.pub`` holds it, comment included."""
    return public_line(ed25519.Ed25519PrivateKey.generate()) + " root@agency-sftp"


def private_pem() -> bytes:
    """A new Ed25519 client key in OpenSSH's PEM format, unencrypted."""
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
