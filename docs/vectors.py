#!/usr/bin/env python3
"""Recompute the test vectors of docs/FORMATS.md independently of cloakline.

Needs only the Python standard library, plus the `cryptography` package for the envelope.
Run: python3 docs/vectors.py
"""
import base64
import hashlib
import hmac

KEY = bytes(range(32))


def hkdf_sha256(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()  # empty salt = 32 zero bytes
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm, i = okm + t, i + 1
    return okm[:length]


def token(key: bytes, domain: str, value: str, length: int = 32, prefix: str = "") -> str:
    sub = hkdf_sha256(key, f"cloakline/v1/tokenize/{domain}".encode())
    return prefix + hmac.new(sub, value.encode("utf-8"), hashlib.sha256).hexdigest()[:length]


def envelope(key: bytes, key_id: str, domain: str, plaintext: bytes, nonce: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    sub = hkdf_sha256(key, f"cloakline/v1/encrypt/{domain}".encode())
    ct_and_tag = AESGCM(sub).encrypt(nonce, plaintext, domain.encode("utf-8"))
    raw = bytes([1, len(key_id)]) + key_id.encode() + nonce + ct_and_tag
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def open_envelope(key: bytes, domain: str, env: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = base64.urlsafe_b64decode(env + "=" * (-len(env) % 4))
    assert raw[0] == 1, "unknown envelope version"
    n = raw[1]
    nonce, body = raw[2 + n : 14 + n], raw[14 + n :]
    sub = hkdf_sha256(key, f"cloakline/v1/encrypt/{domain}".encode())
    return AESGCM(sub).decrypt(nonce, body, domain.encode("utf-8"))


if __name__ == "__main__":
    print("fingerprint     ", hkdf_sha256(KEY, b"cloakline/v1/fingerprint")[:8].hex())
    print("token email     ", token(KEY, "email", "alice@example.com", 64))
    print("token unicode   ", token(KEY, "email", "张伟@例子.中国", 64))
    print("token int 42    ", token(KEY, "customer_id", "42", 24, "c_"))
    env = envelope(KEY, "k1", "national_id", b"110101199003074518", bytes(range(12)))
    print("envelope        ", env)
    print("opened          ", open_envelope(KEY, "national_id", env).decode())
