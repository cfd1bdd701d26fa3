"""What every part of chart-check.py shares: the paths, the failure tally,
strict YAML loading, and rendering the chart and the overlays."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
CHART = ROOT / "charts/ws-chat"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
OVERLAYS = [ROOT / "k8s/overlays/dev", ROOT / "k8s/overlays/prod"]
RULES = CHART / "rules/ws-chat.rules.yaml"
RULE_TESTS = sorted((CHART / "rules/tests").glob("*.yaml"))
DASHBOARD = CHART / "dashboards/ws-chat.json"
RELEASE, NAMESPACE = "ws-chat-ci", "chat"
BINARY = "/usr/local/bin/ws-chat"
CONFIG_PATH = "/etc/ws-chat/config.toml"


class Failures:
    """The checks' tally: each prints ok or FAIL; `finish` gives the exit code."""

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
