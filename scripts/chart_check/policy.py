"""The packaging contract, checked on the objects a chart render or an
overlay would apply: security, probes, drain timing, settings, extras."""
from __future__ import annotations

import json
import tomllib

import yaml

from chart_check.common import BINARY, CONFIG_PATH, DASHBOARD, RELEASE, RULES, Failures, name_of, seconds
from chart_check.settings import server_refuses


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
