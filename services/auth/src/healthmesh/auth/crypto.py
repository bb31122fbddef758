"""Encryption at rest for provider tokens: AES-256-GCM, the key id stored beside each ciphertext.

Keys come from settings as `kid:base64(32 bytes)` pairs; new ciphertexts use the active key, old
ones stay readable while their key is still configured. Rotating is therefore: add the new key,
make it active, run `python -m healthmesh.auth.reencrypt`, then drop the old key. The associated
data binds a ciphertext to its row (user, provider, field), so a ciphertext copied into another
row does not decrypt.
"""

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


class CipherError(Exception):
    """A ciphertext that cannot be decrypted: unknown key id, wrong row, or tampering."""


@dataclass(frozen=True)
class Sealed:
    kid: str
    blob: bytes
    """nonce || ciphertext+tag"""


def parse_keys(spec: str) -> dict[str, bytes]:
    """`kid1:b64key,kid2:b64key` → {kid: key}; every key must be 32 bytes (AES-256)."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kid, sep, encoded = item.partition(":")
        if not sep or not kid:
            raise ValueError("token keys are written kid:base64key, separated by commas")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"token key {kid!r} is not valid base64") from None
        if len(key) != 32:
            raise ValueError(f"token key {kid!r} must be 32 bytes, not {len(key)}")
        keys[kid] = key
    return keys


class TokenCipher:
    def __init__(self, keys: dict[str, bytes], active_kid: str) -> None:
        if active_kid not in keys:
            raise ValueError(f"active token key {active_kid!r} is not among the configured keys")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_kid = active_kid

    def seal(self, plaintext: str, context: str) -> Sealed:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.active_kid].encrypt(nonce, plaintext.encode(), context.encode())
        return Sealed(self.active_kid, nonce + sealed)

    def open(self, sealed: Sealed, context: str) -> str:
        aead = self._keys.get(sealed.kid)
        if aead is None:
            raise CipherError(f"no key {sealed.kid!r} configured to decrypt this token")
        nonce, body = sealed.blob[:_NONCE_BYTES], sealed.blob[_NONCE_BYTES:]
        try:
            return aead.decrypt(nonce, body, context.encode()).decode()
        except InvalidTag:
            raise CipherError("token ciphertext does not match its key or row") from None


def generate_key() -> str:
    """A new random key, base64, for `HEALTHMESH_TOKEN_KEYS`."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()
