#!/usr/bin/env python3
"""Recompute the test vectors of docs/FORMATS.md independently of cloakline.

Needs only the Python standard library, plus the `cryptography` package for the envelopes and
the AES block function under FF1.
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


def siv_envelope(key: bytes, key_id: str, domain: str, plaintext: bytes) -> str:
    """encrypt_deterministic: AES-SIV (RFC 5297) with a 64-byte subkey and AD = [domain]."""
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

    sub = hkdf_sha256(key, f"cloakline/v1/encrypt_deterministic/{domain}".encode(), 64)
    v_and_c = AESSIV(sub).encrypt(plaintext, [domain.encode("utf-8")])
    raw = bytes([2, len(key_id)]) + key_id.encode() + v_and_c
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def ff1_encrypt(key: bytes, radix: int, tweak: bytes, x: list) -> list:
    """NIST SP 800-38G FF1, written from the specification (Algorithm 7)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    def ciph(block: bytes) -> bytes:
        e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        return e.update(block) + e.finalize()

    def num(xs):
        n = 0
        for d in xs:
            n = n * radix + d
        return n

    def string(n, m):
        out = []
        for _ in range(m):
            out.append(n % radix)
            n //= radix
        return out[::-1]

    n, t = len(x), len(tweak)
    u, v = n // 2, n - n // 2
    a, b_ = x[:u], x[u:]
    b = ((radix**v - 1).bit_length() + 7) // 8
    d = 4 * ((b + 3) // 4) + 4
    p = bytes([1, 2, 1]) + radix.to_bytes(3, "big") + bytes([10, u % 256]) + n.to_bytes(4, "big") + t.to_bytes(4, "big")
    for i in range(10):
        q = tweak + bytes((-t - b - 1) % 16) + bytes([i]) + num(b_).to_bytes(b, "big")
        r = bytes(16)
        msg = p + q
        for k in range(0, len(msg), 16):
            r = ciph(bytes(x ^ y for x, y in zip(r, msg[k : k + 16])))
        s = r
        j = 1
        while len(s) < d:
            s += ciph(bytes(x ^ y for x, y in zip(r, j.to_bytes(16, "big"))))
            j += 1
        y = int.from_bytes(s[:d], "big")
        m = u if i % 2 == 0 else v
        c = (num(a) + y) % radix**m
        a, b_ = b_, string(c, m)
    return a + b_


def fpe(key: bytes, domain: str, value: str, alphabet: str, separators: str = "", keep_last: int = 0) -> str:
    """cloakline's `fpe`: FF1-AES-256 over the alphabet characters, separators in place."""
    sub = hkdf_sha256(key, f"cloakline/v1/fpe/{domain}".encode())
    at = [i for i, c in enumerate(value) if c not in separators]
    xs = [alphabet.index(value[i]) for i in at]
    end = len(xs) - keep_last
    xs[:end] = ff1_encrypt(sub, len(alphabet), domain.encode("utf-8"), xs[:end])
    out = list(value)
    for i, n in zip(at, xs):
        out[i] = alphabet[n]
    return "".join(out)


if __name__ == "__main__":
    print("fingerprint     ", hkdf_sha256(KEY, b"cloakline/v1/fingerprint")[:8].hex())
    print("token email     ", token(KEY, "email", "alice@example.com", 64))
    print("token unicode   ", token(KEY, "email", "张伟@例子.中国", 64))
    print("token int 42    ", token(KEY, "customer_id", "42", 24, "c_"))
    env = envelope(KEY, "k1", "national_id", b"110101199003074518", bytes(range(12)))
    print("envelope        ", env)
    print("opened          ", open_envelope(KEY, "national_id", env).decode())
    print("siv envelope    ", siv_envelope(KEY, "k1", "national_id", b"110101199003074518"))
    nist = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3cef4359d8d580aa4f7f036d6f04fc6a94")
    print("ff1 nist #7     ", "".join(map(str, ff1_encrypt(nist, 10, b"", list(range(10))))))
    print("fpe digits      ", fpe(KEY, "card", "4111 1111 1111 1111", "0123456789", " ", 4))
    print("fpe alnum       ", fpe(KEY, "plate", "AB12CD34", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
