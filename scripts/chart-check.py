#!/usr/bin/env python3
"""Offline checks of the Helm chart, the kustomize overlays and the alert rules.

No helm binary, no cluster: the chart is linted and rendered with Helm's Go
SDK (PyPI helm-python-sdk), every rendered object is validated with
kubernetes-validate (strict: unknown fields fail) for the three newest
Kubernetes minors it ships, and rules go through promtool.

    chart-check.py lint      helm lint + render of every ci/*.yaml, the values
                             that must be refused, the dashboard JSON
    chart-check.py validate  schema + policy checks of every object rendered
                             from the chart (each ci/*.yaml) and from
                             `kubectl kustomize k8s/overlays/{dev,prod}`
    chart-check.py rules     promtool check/test on rules/, and check on the
                             rendered PrometheusRule's spec

Run it with the venv from scripts/deps/packaging.sh (mk/packaging.mk does).
Runs every check of the chosen part, then exits non-zero if any failed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts/ws-chat"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
OVERLAYS = [ROOT / "k8s/overlays/dev", ROOT / "k8s/overlays/prod"]
RULES = CHART / "rules/ws-chat.rules.yaml"
RULE_TESTS = sorted((CHART / "rules/tests").glob("*.yaml"))
DASHBOARD = CHART / "dashboards/ws-chat.json"
RELEASE, NAMESPACE = "ws-chat-ci", "chat"
BINARY = "/usr/local/bin/ws-chat"
CONFIG_PATH = "/etc/ws-chat/config.toml"

# Values the chart must refuse, and a piece of the message it must give:
# a render that fails for another reason (a typo in a template) is not a pass.
MUST_FAIL = [
    ("negative replicaCount", {"replicaCount": -1}, "minimum"),
    ("JWT keys without their Secret", {"auth": {"jwt": {"keys": [{"alg": "HS256", "secretKey": "k"}]}}},
     "auth.jwt.existingSecret"),
    ("unknown top-level key", {"replicas": 2}, "additional properties 'replicas'"),
    ("unknown nested key", {"autoscaling": {"enable": True}}, "additional properties 'enable'"),
    ("negative drain window", {"shutdown": {"drainWindowSeconds": -5}}, "minimum"),
    ("bad broker kind", {"broker": {"kind": "nats"}}, "broker"),
    ("3 replicas, memory broker", {"replicaCount": 3}, "broker.kind=memory"),
    ("HPA, memory broker", {"autoscaling": {"enabled": True}}, "broker.kind=memory"),
    ("redis without url", {"broker": {"kind": "redis"}}, "needs redis.url"),
    ("Redis CA without TLS", {"broker": {"kind": "redis"},
                              "redis": {"url": "redis://r:6379", "tlsCaSecret": "ca"}},
     "need a rediss:// redis.url"),
    ("Redis client certificate without TLS", {"broker": {"kind": "redis"},
                                              "redis": {"url": "redis://r:6379", "tlsClientSecret": "c"}},
     "need a rediss:// redis.url"),
    ("cluster without seed nodes", {"broker": {"kind": "redis"}, "redis": {"mode": "cluster"}},
     "needs redis.urls"),
    ("sentinel without a master name", {"broker": {"kind": "redis"},
                                        "redis": {"mode": "sentinel", "urls": ["redis://s:26379"]}},
     "needs redis.sentinelMaster"),
    ("an unknown Redis mode", {"broker": {"kind": "redis"}, "redis": {"mode": "ring"}}, "mode"),
    ("chart-owned setting in config", {"config": {"shutdown": {"drain_window": "5s"}}},
     "config.shutdown.drain_window is set by the chart"),
    ("IPv6 prefix of 0 bits", {"config": {"limits": {"ipv6_prefix": 0}}}, "minimum"),
    ("a user connection cap of 0", {"config": {"limits": {"user_max_connections": 0}}}, "minimum"),
    ("a user message refill that is not a duration", {"config": {"limits": {"user_message_refill": "fast"}}},
     "user_message_refill"),
    ("request-head cap under hyper's minimum", {"config": {"server": {"max_header_bytes": 4096}}},
     "minimum"),
    ("a metrics namespace that is not a name", {"networkPolicy": {"metricsNamespaces": ["Mon itoring"]}},
     "metricsNamespaces"),
    ("a history budget with an unknown unit", {"config": {"rooms": {"history_bytes": "64M"}}},
     "history_bytes"),
    ("a page token URL on another origin", {"config": {"auth": {"page_token_url": "https://id.example.com/token"}}},
     "page_token_url"),
    ("an API setting under config (api.* has its own values)", {"config": {"api": {"max_body_bytes": 4096}}},
     "additional properties 'api'"),
    ("an API key name with a slash", {"api": {"keys": [{"name": "ci/x", "scopes": ["publish"],
                                                        "key": "0123456789abcdef"}]}}, "/api/keys/0/name"),
    ("an API key name a Secret cannot hold", {"api": {"keys": [{"name": "..ci", "scopes": ["publish"],
                                                                "key": "0123456789abcdef"}]}}, "/api/keys/0/name"),
    ("an unknown API scope", {"api": {"keys": [{"name": "ci", "scopes": ["write"], "key": "0123456789abcdef"}]}},
     "/api/keys/0/scopes"),
    ("an API key without scopes", {"api": {"keys": [{"name": "ci", "scopes": [], "key": "0123456789abcdef"}]}},
     "/api/keys/0/scopes"),
    ("a plain API key under 16 characters", {"api": {"keys": [{"name": "ci", "scopes": ["read"], "key": "short"}]}},
     "/api/keys/0/key"),
    ("an API key without key or existingSecret", {"api": {"keys": [{"name": "ci", "scopes": ["read"]}]}},
     "api.keys[0] (ci) needs key"),
    ("an API key in values with existingSecret",
     {"api": {"existingSecret": "mine", "keys": [{"name": "ci", "scopes": ["read"], "key": "0123456789abcdef"}]}},
     "key is ignored when api.existingSecret is set"),
    ("two API keys with one name", {"api": {"keys": [{"name": "ci", "scopes": ["read"], "key": "0123456789abcdef"},
                                                     {"name": "ci", "scopes": ["publish"], "key": "fedcba9876543210"}]}},
     "is used twice"),
    ("an idempotency window that is not a duration", {"api": {"idempotencyWindow": "soon"}}, "idempotencyWindow"),
    ("an API body cap over 1 MiB", {"api": {"maxBodyBytes": 2097152}}, "maximum"),
    ("an API namespace that is not a name", {"networkPolicy": {"apiNamespaces": ["Build Bots"]}}, "apiNamespaces"),
]

# Prometheus Operator CRDs have no schema in kubernetes-validate. These are
# partial, hand-written schemas for the fields this chart writes (strict
# where we write), so a misspelt field still fails.
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_META = {"type": "object", "required": ["name"],
         "properties": {"name": {"type": "string"}, "namespace": {"type": "string"},
                        "labels": _LABELS, "annotations": _LABELS}}
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object", "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {}, "kind": {}, "metadata": _META,
            "spec": {"type": "object", "additionalProperties": False, "required": ["selector", "endpoints"],
                     "properties": {
                         "selector": {"type": "object", "properties": {"matchLabels": _LABELS}},
                         "namespaceSelector": {"type": "object"},
                         "endpoints": {"type": "array", "minItems": 1, "items": {
                             "type": "object", "additionalProperties": False,
                             "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}}}}}}}},
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "type": "object", "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {}, "kind": {}, "metadata": _META,
            "spec": {"type": "object", "additionalProperties": False, "required": ["groups"],
                     "properties": {"groups": {"type": "array", "items": {
                         "type": "object", "required": ["name", "rules"],
                         "properties": {"name": {"type": "string"}, "interval": {"type": "string"},
                                        "rules": {"type": "array", "items": {
                                            "type": "object", "additionalProperties": False, "required": ["expr"],
                                            "properties": {"alert": {"type": "string"}, "record": {"type": "string"},
                                                           "expr": {"type": "string"}, "for": {"type": "string"},
                                                           "labels": _LABELS, "annotations": _LABELS}}}}}}}}}},
}


class Failures:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.passed = 0

    def ok(self, what: str) -> None:
        self.passed += 1
        print(f"  ok   {what}")

    def fail(self, what: str, why: str) -> None:
        self.items.append(f"{what}: {why}")
        print(f"  FAIL {what}: {why}")

    def check(self, cond: bool, what: str, why: str = "") -> None:
        self.ok(what) if cond else self.fail(what, why or "assertion failed")

    def finish(self) -> int:
        print(f"chart-check: {self.passed} passed, {len(self.items)} failed")
        return 1 if self.items else 0


# ---------------------------------------------------------------- helpers

class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: PyYAML keeps the last one
    silently, and two `env:` keys in a template is exactly the bug to catch."""


def _no_dup_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_dup_mapping)


def load_docs(text: str, origin: str) -> list[dict]:
    docs = [d for d in yaml.load_all(text, Loader=StrictLoader) if d is not None]
    for d in docs:
        if not isinstance(d, dict) or "kind" not in d or "apiVersion" not in d:
            raise ValueError(f"{origin}: a document without kind/apiVersion")
    return docs


def helm():
    import helm_python
    return helm_python


def render_chart(values: dict) -> dict[str, str]:
    h = helm()
    with h.Chart.load(CHART) as chart:
        return chart.render(values=values, name=RELEASE, namespace=NAMESPACE,
                            is_install=True)


def rendered_objects(values: dict, origin: str) -> tuple[list[dict], str]:
    out = render_chart(values)
    objs: list[dict] = []
    notes = ""
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objs += load_docs(text, f"{origin}:{path}")
    return objs, notes


def kustomize(overlay: Path) -> list[dict]:
    proc = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay.relative_to(ROOT)}: {proc.stderr.strip()}")
    return load_docs(proc.stdout, str(overlay.relative_to(ROOT)))


def k8s_minors() -> list[str]:
    """The three newest Kubernetes minors kubernetes-validate ships schemas for."""
    from kubernetes_validate import utils
    minors = []
    for v in utils.all_versions():
        mm = utils.major_minor(v)
        if mm not in minors:
            minors.append(mm)
    return minors[-3:]


def name_of(obj: dict) -> str:
    return f"{obj['kind']}/{obj.get('metadata', {}).get('name', '?')}"


def values_of(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=StrictLoader) or {}


def seconds(duration: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration.strip())
    if not m:
        raise ValueError(f"not a duration: {duration!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


# ---------------------------------------------------------------- lint

def cmd_lint(f: Failures) -> None:
    h = helm()
    print("== yamllint --strict")
    proc = subprocess.run([sys.executable, "-m", "yamllint", "--strict", "-c", str(ROOT / ".yamllint"), "."],
                          cwd=ROOT, capture_output=True, text=True)
    f.check(proc.returncode == 0, "yamllint of the repository's YAML", proc.stdout + proc.stderr)

    print("== helm lint (strict) and render, per ci values file")
    kube = "v" + k8s_minors()[-1] + ".0"
    for vf in CI_VALUES:
        values = values_of(vf)
        report = h.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=kube)
        # Severity 1 is INFO ("icon is recommended"); warnings and errors fail.
        bad = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + \
              [{"error": e} for e in report.get("errors", [])]
        f.check(not bad, f"helm lint {vf.name} ({kube})", json.dumps(bad))
        try:
            objs, notes = rendered_objects(values, vf.name)
            f.check(bool(objs) and "ws-chat" in notes, f"render {vf.name}: {len(objs)} objects + NOTES.txt",
                    "nothing rendered or NOTES.txt empty")
        except Exception as e:  # noqa: BLE001 - report any render failure
            f.fail(f"render {vf.name}", str(e))

    print("== values the chart must refuse")
    for what, values, expect in MUST_FAIL:
        try:
            render_chart(values)
            f.fail(f"refuses {what}", f"{values} rendered")
        except h.HelmError as e:
            f.check(expect in str(e), f"refuses {what}", f"failed, but not with {expect!r}: {e}")

    print("== NetworkPolicy defaults")
    try:
        objs, _ = rendered_objects({}, "defaults")
        nps = [o for o in objs if o["kind"] == "NetworkPolicy"]
        admin = [r for np in nps for r in np["spec"].get("ingress", [])
                 if any(p.get("port") == "admin" for p in r.get("ports", []))]
        want = [{"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                            "operator": "In", "values": ["monitoring"]}]}}]
        f.check(len(nps) == 1 and len(admin) == 1 and admin[0].get("from") == want,
                "NetworkPolicy on by default; admin port only from namespace monitoring", json.dumps(admin))
        objs, _ = rendered_objects({"networkPolicy": {"metricsNamespaces": []}}, "no metrics namespaces")
        admin = [r for o in objs if o["kind"] == "NetworkPolicy" for r in o["spec"].get("ingress", [])
                 if any(p.get("port") == "admin" for p in r.get("ports", []))]
        f.check(admin == [], "no metrics namespace or peer: no admin rule (only the node reaches it)",
                json.dumps(admin))
        objs, _ = rendered_objects({"networkPolicy": {"apiNamespaces": ["builds"]}}, "API namespaces")
        admin = [r for o in objs if o["kind"] == "NetworkPolicy" for r in o["spec"].get("ingress", [])
                 if any(p.get("port") == "admin" for p in r.get("ports", []))]
        api_rule = [{"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                                "operator": "In", "values": ["builds"]}]}}]
        f.check(len(admin) == 2 and admin[0].get("from") == want and admin[1].get("from") == api_rule,
                "networkPolicy.apiNamespaces: a second admin rule from those namespaces", json.dumps(admin))
    except Exception as e:  # noqa: BLE001 - report any render failure
        f.fail("NetworkPolicy defaults", str(e))

    print("== NOTES.txt: the trusted_proxies hint")
    ingress = {"ingress": {"enabled": True}}
    for what, values, want in [
        ("an Ingress without trusted_proxies", ingress, True),
        ("an Ingress with trusted_proxies",
         {**ingress, "config": {"server": {"trusted_proxies": ["10.0.0.0/8"]}}}, False),
        ("no Ingress", {}, False),
    ]:
        try:
            _, notes = rendered_objects(values, what)
            f.check(("trusted_proxies is empty" in notes) == want,
                    f"NOTES.txt {'warns' if want else 'is quiet'} with {what}", notes[-300:])
        except Exception as e:  # noqa: BLE001 - report any render failure
            f.fail(f"NOTES.txt with {what}", str(e))

    print("== NOTES.txt: the server API")
    one_key = {"api": {"keys": [{"name": "ci", "scopes": ["publish"], "key": "0123456789abcdef"}]}}
    for what, values, url, hint in [
        ("no API key", {}, False, False),
        ("an API key and no API namespace", one_key, True, True),
        ("an API key and an API namespace", {**one_key, "networkPolicy": {"apiNamespaces": ["ci"]}}, True, False),
    ]:
        try:
            _, notes = rendered_objects(values, what)
            f.check((f"{RELEASE}.{NAMESPACE}.svc:8081/api/v1/" in notes) == url
                    and ("apiNamespaces and apiFrom are empty" in notes) == hint,
                    f"NOTES.txt with {what}: API URL {'shown' if url else 'absent'}, "
                    f"NetworkPolicy hint {'shown' if hint else 'absent'}", notes[-600:])
        except Exception as e:  # noqa: BLE001 - report any render failure
            f.fail(f"NOTES.txt with {what}", str(e))

    print("== dashboard")
    check_dashboard(f)


def check_dashboard(f: Failures) -> None:
    try:
        dash = json.loads(DASHBOARD.read_text())
    except ValueError as e:
        f.fail("dashboard JSON parses", str(e))
        return
    f.check(dash.get("uid") == "ws-chat", "dashboard uid is ws-chat", str(dash.get("uid")))
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    f.check(ds.get("type") == "datasource" and ds.get("query") == "prometheus",
            "dashboard has a prometheus ${datasource} variable", json.dumps(ds))
    panels, stack = [], list(dash.get("panels", []))
    while stack:
        p = stack.pop()
        panels.append(p)
        stack += p.get("panels", [])
    problems = []
    for p in panels:
        if p.get("type") == "row":
            continue
        for t in p.get("targets", []) or [{}]:
            expr = t.get("expr", "")
            if not expr:
                problems.append(f"{p.get('title')}: a target without expr")
            if (t.get("datasource") or p.get("datasource") or {}).get("uid") != "${datasource}":
                problems.append(f"{p.get('title')}: datasource is not ${{datasource}}")
            for rng in re.findall(r"(?:rate|increase|irate)\([^\[]*\[([^\]]*)\]", expr):
                if rng != "$__rate_interval":
                    problems.append(f"{p.get('title')}: rate window {rng!r}, not $__rate_interval")
    f.check(not problems, f"dashboard panels ({len(panels)}) use ${{datasource}} and $__rate_interval",
            "; ".join(problems))
    ids = [p.get("id") for p in panels]
    f.check(len(ids) == len(set(ids)), "dashboard panel ids are unique")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/dashboard-metrics.py")], capture_output=True, text=True)
    names = proc.stdout.split()
    f.check(proc.returncode == 0 and all(n.startswith(("wschat_", "process_")) for n in names) and len(names) > 20,
            f"dashboard-metrics.py lists {len(names)} wschat_/process_ series", proc.stdout + proc.stderr)


# ---------------------------------------------------------------- validate

def check_object_schema(f: Failures, obj: dict, origin: str, minors: list[str]) -> None:
    import jsonschema
    import kubernetes_validate
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_SCHEMAS:
        try:
            jsonschema.validate(obj, CRD_SCHEMAS[key])
            f.ok(f"{origin} {name_of(obj)} (partial CRD schema)")
        except jsonschema.ValidationError as e:
            f.fail(f"{origin} {name_of(obj)}", f"{e.message} at {'/'.join(map(str, e.absolute_path))}")
        return
    errors = []
    for minor in minors:
        try:
            kubernetes_validate.validate(obj, minor, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"k8s {minor}: {e.message} at {'/'.join(map(str, e.path))}")
        except Exception as e:  # noqa: BLE001 - SchemaNotFound and the like are failures too
            errors.append(f"k8s {minor}: {getattr(e, 'message', e)}")
    f.check(not errors, f"{origin} {name_of(obj)} (k8s {', '.join(minors)} strict)", "; ".join(errors))


WS_CHAT = Path(__file__).resolve().parent.parent / "target" / "debug" / "ws-chat"


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


def check_policy(f: Failures, objs: list[dict], origin: str, chart: bool) -> None:
    """The packaging contract, checked on what would be applied."""
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    deployments = by_kind.get("Deployment", [])
    f.check(len(deployments) == 1, f"{origin}: one Deployment", str(len(deployments)))
    if not deployments:
        return
    dep = deployments[0]
    pod = dep["spec"]["template"]["spec"]
    meta = dep["spec"]["template"]["metadata"]
    (c,) = [c for c in pod["containers"] if c["name"] == "ws-chat"]
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    problems = []

    def want(cond, msg):
        if not cond:
            problems.append(msg)

    want(psc.get("runAsNonRoot") or csc.get("runAsNonRoot"), "runAsNonRoot")
    want((csc.get("runAsUser") or psc.get("runAsUser")) == 65532, "runAsUser 65532")
    want(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    want(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
    want("ALL" in csc.get("capabilities", {}).get("drop", []), "capabilities drop ALL")
    want((csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
         "seccompProfile RuntimeDefault")
    want(pod.get("automountServiceAccountToken") is False, "automountServiceAccountToken false on the pod")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    want(ports == {"http": 8080, "admin": 8081}, f"ports http 8080 / admin 8081, got {ports}")
    rp, lp = c.get("readinessProbe", {}).get("httpGet", {}), c.get("livenessProbe", {}).get("httpGet", {})
    want(rp.get("path") == "/readyz" and rp.get("port") in ("admin", 8081), "readiness /readyz on admin")
    want(lp.get("path") == "/healthz" and lp.get("port") in ("admin", 8081), "liveness /healthz on admin")
    want(c.get("args", [])[:2] == ["--config", CONFIG_PATH], f"args start with --config {CONFIG_PATH}")
    want(any(m["mountPath"] == CONFIG_PATH for m in c.get("volumeMounts", [])), f"{CONFIG_PATH} mounted")
    want(any(m["mountPath"] == "/etc/ws-chat/secrets" for m in c.get("volumeMounts", [])),
         "/etc/ws-chat/secrets mounted")
    want(bool(pod.get("topologySpreadConstraints")), "topologySpreadConstraints")
    pre = c.get("lifecycle", {}).get("preStop")
    pre_s = 0
    if pre:
        if "sleep" in pre:
            pre_s = pre["sleep"]["seconds"]
        else:
            cmd = pre.get("exec", {}).get("command", [])
            want(cmd[:2] == [BINARY, "sleep"] and len(cmd) == 3, f"exec preStop is `{BINARY} sleep N`: {cmd}")
            pre_s = int(cmd[2]) if len(cmd) == 3 else 0
    else:
        problems.append("a preStop hook")
    if chart:
        for a in ("checksum/config", "checksum/secret"):
            want(a in meta.get("annotations", {}), f"pod annotation {a}")

    # The settings file: valid TOML, and the grace period outlasts preStop + drain.
    cms = [cm for cm in by_kind.get("ConfigMap", []) if "config.toml" in cm.get("data", {})]
    if len(cms) != 1:
        problems.append(f"one ConfigMap with config.toml (found {len(cms)})")
    else:
        try:
            cfg = tomllib.loads(cms[0]["data"]["config.toml"])
            drain = seconds(cfg.get("shutdown", {}).get("drain_window", "10s"))
            grace = pod.get("terminationGracePeriodSeconds", 30)
            want(grace > pre_s + drain, f"terminationGracePeriodSeconds {grace} > preStop {pre_s} + drain {drain}")
            want(cfg.get("auth", {}).get("tokens_file") == "/etc/ws-chat/secrets/tokens.toml",
                 "config auth.tokens_file is /etc/ws-chat/secrets/tokens.toml")
            replicas = dep["spec"].get("replicas", 1)
            multi = replicas > 1 or bool(by_kind.get("HorizontalPodAutoscaler"))
            want(not multi or cfg.get("broker", {}).get("kind") == "redis",
                 "more than one replica only with broker.kind=redis")
            tokens_text = next((t for sec in by_kind.get("Secret", [])
                                for t in [(sec.get("stringData") or {}).get("tokens.toml")] if t), "")
            plain_env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
            api_keys = {k: v for sec in by_kind.get("Secret", []) if sec["metadata"]["name"].endswith("-api-keys")
                        for k, v in (sec.get("stringData") or {}).items()}
            refused = server_refuses(cms[0]["data"]["config.toml"], tokens_text, plain_env, api_keys)
            want(refused is None, f"ws-chat check-config accepts the rendered settings: {refused}")
        except (tomllib.TOMLDecodeError, ValueError) as e:
            problems.append(f"config.toml: {e}")
    for s in by_kind.get("Secret", []):
        toml_text = (s.get("stringData") or {}).get("tokens.toml")
        if toml_text is not None:
            try:
                tomllib.loads(toml_text)
            except tomllib.TOMLDecodeError as e:
                problems.append(f"{name_of(s)} tokens.toml: {e}")
    for sa in by_kind.get("ServiceAccount", []):
        want(sa.get("automountServiceAccountToken") is False, f"{name_of(sa)} automountServiceAccountToken false")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        down = hpa["spec"].get("behavior", {}).get("scaleDown", {}).get("stabilizationWindowSeconds", 300)
        want(down >= 600, f"HPA scale-down stabilisation {down} s >= 600 s")
    for svc in by_kind.get("Service", []):
        names = {p["name"]: p.get("appProtocol") for p in svc["spec"]["ports"]}
        want(set(names) == {"http", "admin"} and all(names.values()), f"Service ports http/admin with appProtocol: {names}")
    f.check(not problems, f"{origin}: packaging policy", "; ".join(problems))


def cmd_validate(f: Failures) -> None:
    minors = k8s_minors()
    print(f"== chart objects, Kubernetes {', '.join(minors)} (strict)")
    for vf in CI_VALUES:
        try:
            objs, _ = rendered_objects(values_of(vf), vf.name)
        except Exception as e:  # noqa: BLE001
            f.fail(f"render {vf.name}", str(e))
            continue
        for obj in objs:
            check_object_schema(f, obj, vf.name, minors)
        check_policy(f, [o for o in objs if "helm.sh/hook" not in o["metadata"].get("annotations", {})],
                     vf.name, chart=True)
        check_chart_extras(f, objs, vf.name)
    print(f"== kustomize overlays, Kubernetes {', '.join(minors)} (strict)")
    for overlay in OVERLAYS:
        origin = str(overlay.relative_to(ROOT))
        try:
            objs = kustomize(overlay)
        except Exception as e:  # noqa: BLE001
            f.fail(origin, str(e))
            continue
        for obj in objs:
            check_object_schema(f, obj, origin, minors)
        check_policy(f, objs, origin, chart=False)
        check_overlay_shape(f, objs, overlay.name, origin)


def check_overlay_shape(f: Failures, objs: list[dict], name: str, origin: str) -> None:
    """dev: one replica, memory broker. prod: >= 3 replicas via HPA, redis, PDB."""
    kinds = {o["kind"]: o for o in objs}
    dep = kinds.get("Deployment", {})
    cms = [o for o in objs if o["kind"] == "ConfigMap" and "config.toml" in o.get("data", {})]
    broker = tomllib.loads(cms[0]["data"]["config.toml"]).get("broker", {}).get("kind") if cms else None
    if name == "dev":
        f.check(dep.get("spec", {}).get("replicas") == 1 and broker == "memory"
                and "HorizontalPodAutoscaler" not in kinds,
                f"{origin}: one replica, memory broker, no HPA")
    elif name == "prod":
        hpa = kinds.get("HorizontalPodAutoscaler", {}).get("spec", {})
        f.check(hpa.get("minReplicas", 0) >= 3 and "replicas" not in dep.get("spec", {})
                and broker == "redis" and "PodDisruptionBudget" in kinds,
                f"{origin}: HPA from 3 replicas owns the count, redis broker, PDB")


def check_chart_extras(f: Failures, objs: list[dict], origin: str) -> None:
    """What only some values files render: the test hook, dashboards, rules."""
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    tests = [p for p in by_kind.get("Pod", []) if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    smoke_room = f"smoke-{RELEASE}"[:32].rstrip("-")
    for t in tests:
        c = t["spec"]["containers"][0]
        args = c.get("args", [])
        env = {e["name"]: e for e in c.get("env", [])}
        ok = (args[:1] == ["smoke"] and "--url" in args and "--origin" in args
              and args[args.index("--url") + 1] == f"ws://{RELEASE}:8080/chat"
              and args[args.index("--token") + 1] == "$(SMOKE_TOKEN)"
              and "secretKeyRef" in env.get("SMOKE_TOKEN", {}).get("valueFrom", {}))
        f.check(ok, f"{origin}: helm test pod runs ws-chat smoke with the token from the Secret", json.dumps(args))
        f.check("--room" in args and args[args.index("--room") + 1] == smoke_room,
                f"{origin}: helm test pod uses its own room {smoke_room}", json.dumps(args))
    # The smoke token's grant (in the chart's own Secret): that room only.
    for s in by_kind.get("Secret", []):
        text = (s.get("stringData") or {}).get("tokens.toml")
        if text is None or not tests:
            continue
        grants = tomllib.loads(text).get("tokens", [])
        smoke = [g for g in grants if "smoke" in str(g.get("rooms", ""))]
        f.check(len(smoke) == 1 and smoke[0].get("rooms") == [smoke_room] and not smoke[0].get("read_only"),
                f"{origin}: the smoke token is granted {smoke_room} only", json.dumps(grants))
    # The NetworkPolicy (on by default): the admin port never open to all.
    for np in by_kind.get("NetworkPolicy", []):
        rules = np["spec"].get("ingress", [])
        admin = [r for r in rules if any(p.get("port") == "admin" for p in r.get("ports", []))]
        f.check(all(r.get("from") for r in admin),
                f"{origin}: NetworkPolicy lets only chosen peers reach the admin port", json.dumps(admin))
    check_api_keys(f, by_kind, origin)
    for cm in by_kind.get("ConfigMap", []):
        if "ws-chat.json" in cm.get("data", {}):
            same = json.loads(cm["data"]["ws-chat.json"]) == json.loads(DASHBOARD.read_text())
            label = cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
            f.check(same and label, f"{origin}: dashboard ConfigMap carries ws-chat.json with grafana_dashboard=1")
    for pr in by_kind.get("PrometheusRule", []):
        same = pr["spec"] == yaml.safe_load(RULES.read_text())
        f.check(same, f"{origin}: PrometheusRule spec equals rules/ws-chat.rules.yaml")


def check_api_keys(f: Failures, by_kind: dict[str, list[dict]], origin: str) -> None:
    """The server API's keys: the settings name only files under
    /etc/ws-chat/api-keys, never a key; that directory is a read-only mount
    of a Secret with one entry per key name."""
    cms = [cm for cm in by_kind.get("ConfigMap", []) if "config.toml" in cm.get("data", {})]
    deps = by_kind.get("Deployment", [])
    if len(cms) != 1 or len(deps) != 1:
        return
    keys = tomllib.loads(cms[0]["data"]["config.toml"]).get("api", {}).get("keys", [])
    if not keys:
        return
    problems = []
    for k in keys:
        if "key" in k:
            problems.append(f"api.keys {k.get('name')}: a key in the ConfigMap")
        if k.get("key_file") != f"/etc/ws-chat/api-keys/{k.get('name')}":
            problems.append(f"api.keys {k.get('name')}: key_file {k.get('key_file')!r}")
    pod = deps[0]["spec"]["template"]["spec"]
    (c,) = [c for c in pod["containers"] if c["name"] == "ws-chat"]
    mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/etc/ws-chat/api-keys"]
    if len(mounts) != 1 or mounts[0].get("readOnly") is not True or "subPath" in mounts[0]:
        problems.append(f"/etc/ws-chat/api-keys mounted once, read-only, as a directory: {mounts}")
    else:
        (vol,) = [v for v in pod.get("volumes", []) if v["name"] == mounts[0]["name"]]
        secret = vol.get("secret", {})
        items = {i["key"]: i["path"] for i in secret.get("items", [])}
        if items != {k["name"]: k["name"] for k in keys}:
            problems.append(f"the api-keys volume maps each key name to its file: {items}")
        owned = [s for s in by_kind.get("Secret", []) if s["metadata"]["name"] == secret.get("secretName")]
        for s in owned:
            if set((s.get("stringData") or {})) != set(items):
                problems.append(f"{name_of(s)} holds exactly the key names")
    f.check(not problems, f"{origin}: API keys only in a Secret, mounted read-only, one file per name",
            "; ".join(problems))


# ---------------------------------------------------------------- rules

def promtool(f: Failures, what: str, *args: str) -> None:
    proc = subprocess.run(["promtool", *args], capture_output=True, text=True)
    f.check(proc.returncode == 0, what, (proc.stdout + proc.stderr).strip())


def cmd_rules(f: Failures) -> None:
    print("== promtool")
    promtool(f, f"promtool check rules {RULES.relative_to(ROOT)}", "check", "rules", str(RULES))
    f.check(bool(RULE_TESTS), "rule unit test files exist", "none in rules/tests")
    for t in RULE_TESTS:
        promtool(f, f"promtool test rules {t.relative_to(ROOT)}", "test", "rules", str(t))
    # Every alert has a test that expects it to fire.
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r}
    tested = set()
    for t in RULE_TESTS:
        for case in yaml.safe_load(t.read_text()).get("tests", []):
            for a in case.get("alert_rule_test", []):
                if a.get("exp_alerts"):
                    tested.add(a["alertname"])
    f.check(alerts <= tested, f"every alert ({len(alerts)}) has a firing test", f"untested: {sorted(alerts - tested)}")
    full = CHART / "ci/full-values.yaml"
    objs, _ = rendered_objects(values_of(full), full.name)
    rules = [o for o in objs if o["kind"] == "PrometheusRule"]
    f.check(len(rules) == 1, f"{full.name} renders one PrometheusRule", str(len(rules)))
    for r in rules:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as tmp:
            yaml.safe_dump(r["spec"], tmp)
        promtool(f, "promtool check rules <rendered PrometheusRule spec>", "check", "rules", tmp.name)
        Path(tmp.name).unlink()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["lint", "validate", "rules"])
    args = ap.parse_args()
    f = Failures()
    {"lint": cmd_lint, "validate": cmd_validate, "rules": cmd_rules}[args.what](f)
    return f.finish()


if __name__ == "__main__":
    sys.exit(main())
