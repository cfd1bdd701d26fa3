#!/usr/bin/env python3
"""Checks that imports in src/ go one way: down the layers of docs/architecture.md.

Each top-level module of the crate belongs to a layer; a file may name
`crate::<m>` only for modules of its own layer or a lower one, and the
modules of the ground layer must not form a circle among themselves.
Test modules (`#[cfg(test)]` to the end of a file) are not counted.
Prints every offending line; exits 1 if there is any.
"""
import re
import sys
from pathlib import Path

# Top to bottom. A module may import its own layer and every layer below.
LAYERS = [
    ["lib", "main", "server"],
    ["edge"],
    ["session", "api"],
    ["app"],
    ["broker"],
    ["fanout"],
    ["ws"],
    ["auth", "config", "limits", "metrics", "protocol", "smoke", "telemetry", "tls"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
GROUND = set(LAYERS[-1])
REF = re.compile(r"\bcrate::([a-z_]+)")


def module_of(path: Path, src: Path) -> str:
    parts = path.relative_to(src).parts
    return parts[0].removesuffix(".rs")


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    src = root / "src"
    problems = []
    ground_edges = {}
    for path in sorted(src.rglob("*.rs")):
        here = module_of(path, src)
        if here not in RANK:
            problems.append(f"{path.relative_to(root)}: module `{here}` has no layer in {__file__}")
            continue
        text = path.read_text()
        text = text.split("#[cfg(test)]", 1)[0]
        for n, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("//"):
                continue
            for target in REF.findall(line):
                if target not in RANK:
                    continue  # a crate-root item such as crate::load_settings
                if RANK[target] < RANK[here]:
                    problems.append(
                        f"{path.relative_to(root)}:{n}: `{here}` imports `{target}`, a layer above it"
                    )
                if here in GROUND and target in GROUND and target != here:
                    ground_edges.setdefault(here, set()).add(target)
    # Circles among ground modules (each may use the others, but one way).
    seen, stack = set(), []

    def visit(m):
        if m in stack:
            problems.append("ground modules import each other in a circle: " + " -> ".join(stack[stack.index(m):] + [m]))
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in sorted(ground_edges.get(m, ())):
            visit(t)
        stack.pop()

    for m in sorted(ground_edges):
        visit(m)
    for p in problems:
        print(p)
    print(f"check-layers: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
