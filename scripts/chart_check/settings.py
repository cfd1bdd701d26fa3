"""Runs `ws-chat check-config` on the settings a chart or an overlay
renders, with stand-ins for the key files that live in Secrets."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import tomllib
from pathlib import Path

from chart_check.common import ROOT

WS_CHAT = ROOT / "target" / "debug" / "ws-chat"


JWT_GENPKEY = {
    "RS": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "PS": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "ES256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "ES384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "EdDSA": ["-algorithm", "ed25519"],
}


def stand_in_jwt_keys(config_text: str, d: Path) -> str:
    """The JWT key files the rendered settings name live in a Secret the
    chart does not own: put real stand-ins (a 64-byte secret, a fresh public
    key of the right type made by the openssl CLI) in `d` and point the
    settings there, so check-config judges everything else."""
    keys = tomllib.loads(config_text).get("auth", {}).get("jwt", {}).get("keys", [])
    for i, key in enumerate(keys):
        for field in ("secret_file", "public_key_file"):
            path = key.get(field)
            if not path:
                continue
            stand_in = d / f"jwt-{i}"
            if field == "secret_file":
                stand_in.write_bytes(os.urandom(32).hex().encode())
            else:
                alg = key["alg"]
                args = JWT_GENPKEY.get(alg, JWT_GENPKEY.get(alg[:2], []))
                private = subprocess.run(["openssl", "genpkey", *args], capture_output=True, check=True).stdout
                public = subprocess.run(["openssl", "pkey", "-pubout"], input=private,
                                        capture_output=True, check=True).stdout
                stand_in.write_bytes(public)
            config_text = config_text.replace(json.dumps(path), json.dumps(str(stand_in)))
    return config_text


def stand_in_api_keys(config_text: str, d: Path, keys_by_name: dict[str, str]) -> str:
    """The API key files: the chart's own Secret's entry when it renders one,
    else (api.existingSecret) a random plain key, in `d`."""
    for i, key in enumerate(tomllib.loads(config_text).get("api", {}).get("keys", [])):
        path = key.get("key_file")
        if not path:
            continue
        stand_in = d / f"api-key-{i}"
        stand_in.write_text(keys_by_name.get(key.get("name"), os.urandom(16).hex()))
        config_text = config_text.replace(json.dumps(path), json.dumps(str(stand_in)))
    return config_text


def server_refuses(config_text: str, tokens_text: str, env: dict[str, str],
                   api_keys: dict[str, str] | None = None) -> str | None:
    """Runs `ws-chat check-config` on a rendered settings file, with the
    container's plain env values; returns its complaint, or None if accepted."""
    if not WS_CHAT.exists():
        return f"{WS_CHAT} is missing (cargo build --bin ws-chat)"
    with tempfile.TemporaryDirectory() as d:
        tokens = Path(d, "tokens.toml")
        tokens.write_text(tokens_text)
        config_text = stand_in_jwt_keys(config_text, Path(d))
        config_text = stand_in_api_keys(config_text, Path(d), api_keys or {})
        config = Path(d, "config.toml")
        config.write_text(config_text.replace("/etc/ws-chat/secrets/tokens.toml", str(tokens)))
        env = {k: v.replace("/etc/ws-chat/secrets/tokens.toml", str(tokens)) for k, v in env.items()}
        proc = subprocess.run([str(WS_CHAT), "check-config", "--config", str(config)],
                              capture_output=True, text=True, env={"PATH": os.environ.get("PATH", ""), **env})
        return None if proc.returncode == 0 else proc.stderr.strip().splitlines()[0:6].__str__()
