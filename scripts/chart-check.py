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
Its parts are in scripts/chart_check/: common.py (paths, the tally,
rendering), cases.py (values to refuse, CRD schemas), settings.py (check-config
on rendered settings) and policy.py (the packaging contract).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
from chart_check.cases import CRD_SCHEMAS, MUST_FAIL  # noqa: E402
from chart_check.common import (CHART, CI_VALUES, DASHBOARD, NAMESPACE, OVERLAYS, RELEASE, ROOT,  # noqa: E402
                                RULE_TESTS, RULES, Failures, helm, k8s_minors, kustomize, name_of,
                                render_chart, rendered_objects, values_of)
from chart_check.policy import check_chart_extras, check_overlay_shape, check_policy  # noqa: E402


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
