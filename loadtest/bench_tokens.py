"""Tokens for the benchmark's JWT connect storm: an HS256 secret and an
ES256 (P-256) key pair, a ws-chat settings file that trusts both, and files
of minted JWTs, one per line, for `loadgen --tokens-file`.

HS256 is signed here with `hmac`; ES256 with the `openssl` CLI (`openssl dgst
-sha256 -sign`), whose DER signature is turned into the 64-byte JOSE form
(r || s, RFC 7518 §3.4). Standard library only, plus `openssl` on PATH.
"""
from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import time
from pathlib import Path

HS_KID, ES_KID = "bench-hs", "bench-es"
TTL_S = 3 * 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signing_input(alg: str, kid: str, claims: dict) -> bytes:
    header = {"alg": alg, "typ": "JWT", "kid": kid}
    compact = lambda v: json.dumps(v, separators=(",", ":")).encode()  # noqa: E731
    return f"{b64url(compact(header))}.{b64url(compact(claims))}".encode("ascii")


def claims(user: int, now: int) -> dict:
    return {"sub": f"bench-{user:05d}", "name": f"bench {user}", "iat": now, "exp": now + TTL_S}


def hs256(claims_: dict, secret: bytes) -> str:
    data = signing_input("HS256", HS_KID, claims_)
    return f"{data.decode()}.{b64url(hmac.new(secret, data, hashlib.sha256).digest())}"


def der_to_jose(der: bytes, size: int = 32) -> bytes:
    """ECDSA-Sig-Value (SEQUENCE { INTEGER r, INTEGER s }, DER) → r || s,
    each big-endian and left-padded to `size` bytes."""
    def length(at: int) -> tuple[int, int]:
        first = der[at]
        if first < 0x80:
            return first, at + 1
        n = first & 0x7F
        return int.from_bytes(der[at + 1:at + 1 + n], "big"), at + 1 + n

    if not der or der[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    _, at = length(1)
    out = b""
    for _ in range(2):
        if der[at] != 0x02:
            raise ValueError("not a DER INTEGER")
        n, at = length(at + 1)
        value = der[at:at + n].lstrip(b"\x00")
        if len(value) > size:
            raise ValueError("integer too long for the curve")
        out += value.rjust(size, b"\x00")
        at += n
    return out


def es256(claims_: dict, private_pem: Path) -> str:
    data = signing_input("ES256", ES_KID, claims_)
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(private_pem)],
                         input=data, capture_output=True, check=True).stdout
    return f"{data.decode()}.{b64url(der_to_jose(der))}"


class Keys:
    """A fresh HS256 secret and ES256 key pair in `directory`, and the
    settings file (`--config`) that makes ws-chat trust both."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.secret = secrets.token_hex(32).encode()
        self.private = directory / "es256.pem"
        self.public = directory / "es256.pub.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-out", str(self.private)], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", str(self.private), "-pubout", "-out", str(self.public)],
                       check=True, capture_output=True)
        self.config = directory / "jwt.toml"
        self.config.write_text(
            f'[[auth.jwt.keys]]\nalg = "HS256"\nkid = "{HS_KID}"\nsecret = "{self.secret.decode()}"\n'
            f'[[auth.jwt.keys]]\nalg = "ES256"\nkid = "{ES_KID}"\npublic_key_file = "{self.public}"\n')

    def mint(self, alg: str, users: int) -> tuple[Path, float]:
        """Writes one `alg` JWT per user (distinct `sub`s) to a file; returns
        it and the seconds minting took."""
        started = time.monotonic()
        now = int(time.time())
        if alg == "HS256":
            tokens = [hs256(claims(u, now), self.secret) for u in range(users)]
        elif alg == "ES256":
            # One openssl process per token (~10 ms each): spread over the cores.
            with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                tokens = list(pool.map(lambda u: es256(claims(u, now), self.private), range(users)))
        else:
            raise ValueError(f"unknown algorithm {alg}")
        path = self.dir / f"tokens-{alg}.txt"
        path.write_text("\n".join(tokens) + "\n")
        return path, time.monotonic() - started


if __name__ == "__main__":
    # A self-check: the ES256 signature openssl made verifies with openssl
    # again once put back into DER (r and s as they came out of der_to_jose).
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        keys = Keys(Path(d))
        path, took = keys.mint("ES256", 3)
        token = path.read_text().split()[0]
        head, body, sig = token.split(".")
        raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))

        def integer(b: bytes) -> bytes:
            b = b.lstrip(b"\x00") or b"\x00"
            b = b"\x00" + b if b[0] & 0x80 else b
            return bytes([0x02, len(b)]) + b

        body_der = integer(raw[:32]) + integer(raw[32:])
        (Path(d) / "sig.der").write_bytes(bytes([0x30, len(body_der)]) + body_der)
        (Path(d) / "data").write_bytes(f"{head}.{body}".encode())
        ok = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(keys.public), "-signature",
                             str(Path(d) / "sig.der"), str(Path(d) / "data")], capture_output=True, text=True)
        print(f"minted 3 ES256 tokens in {took:.2f} s; openssl verify: {ok.stdout.strip() or ok.stderr.strip()}")
        raise SystemExit(ok.returncode)
