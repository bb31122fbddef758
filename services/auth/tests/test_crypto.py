"""Token encryption at rest: AES-GCM with key ids, bound to its row, rotatable."""

import pytest

from healthmesh.auth.crypto import CipherError, TokenCipher, generate_key, parse_keys


def cipher(spec: str, active: str) -> TokenCipher:
    return TokenCipher(parse_keys(spec), active)


def test_a_sealed_token_opens_with_its_key_and_row() -> None:
    keys = f"k1:{generate_key()}"
    sealed = cipher(keys, "k1").seal("secret-token", "user:oura:a")
    assert sealed.kid == "k1" and b"secret-token" not in sealed.blob
    assert cipher(keys, "k1").open(sealed, "user:oura:a") == "secret-token"


def test_the_same_token_seals_differently_each_time() -> None:
    c = cipher(f"k1:{generate_key()}", "k1")
    assert c.seal("t", "ctx").blob != c.seal("t", "ctx").blob


def test_a_ciphertext_moved_to_another_row_does_not_open() -> None:
    c = cipher(f"k1:{generate_key()}", "k1")
    with pytest.raises(CipherError):
        c.open(c.seal("t", "alice:oura:a"), "bob:oura:a")


def test_tampering_is_detected() -> None:
    c = cipher(f"k1:{generate_key()}", "k1")
    sealed = c.seal("t", "ctx")
    broken = type(sealed)(sealed.kid, sealed.blob[:-1] + bytes([sealed.blob[-1] ^ 1]))
    with pytest.raises(CipherError):
        c.open(broken, "ctx")


def test_after_rotation_old_ciphertexts_open_and_new_ones_use_the_new_key() -> None:
    old, new = generate_key(), generate_key()
    before = cipher(f"k1:{old}", "k1").seal("t", "ctx")
    rotated = cipher(f"k1:{old},k2:{new}", "k2")
    assert rotated.open(before, "ctx") == "t"
    assert rotated.seal("t", "ctx").kid == "k2"
    with pytest.raises(CipherError, match="no key 'k1'"):
        cipher(f"k2:{new}", "k2").open(before, "ctx")


@pytest.mark.parametrize(
    ("spec", "message"),
    [("k1", "kid:base64key"), ("k1:not base64!", "base64"), ("k1:AAAA", "32 bytes")],
)
def test_bad_key_settings_are_refused_with_the_reason(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_keys(spec)


def test_the_active_key_must_be_configured() -> None:
    with pytest.raises(ValueError, match="active token key"):
        cipher(f"k1:{generate_key()}", "k2")
