"""Checks of docs/api/openapi.yaml that openapi-spec-validator does not make.

Run by `make lint-api` with target/venv-api's python (PyYAML, jsonschema),
after the document passed openapi-spec-validator:
- every operation documents the errors it can meet (400, 401, 403, 404, 503;
  413 and 415 when it takes a body), each an `Error`, in application/json;
- every request body object is closed (additionalProperties: false);
- every pattern compiles, every example matches its schema;
- the Room pattern agrees with protocol::valid_room on a table of names.
"""

import re
import sys

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC = sys.argv[1] if len(sys.argv) > 1 else "docs/api/openapi.yaml"
URI = "urn:ws-chat-api"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

doc = yaml.safe_load(open(DOC, encoding="utf-8"))
registry = Registry().with_resource(URI, Resource(doc, DRAFT202012))
problems = []


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        node = registry.resolver(URI).lookup(URI + node["$ref"]).contents
    return node


def validator(schema):
    return Draft202012Validator(rebase(schema), registry=registry)


def rebase(node):
    """`node` with its local refs ("#/components/...") pointing into the document."""
    if isinstance(node, dict):
        return {k: (URI + v if k == "$ref" and v.startswith("#") else rebase(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [rebase(v) for v in node]
    return node


def walk(node, path, seen_patterns):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "pattern" and isinstance(v, str):
                seen_patterns.append((path, v))
            walk(v, f"{path}/{k}", seen_patterns)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(v, f"{path}/{i}", seen_patterns)


for path, item in doc["paths"].items():
    for method, op in item.items():
        if method not in METHODS:
            continue
        where = f"{method.upper()} {path}"
        responses = op.get("responses", {})
        needed = {"400", "401", "403", "404", "503"}
        body = op.get("requestBody")
        if body:
            needed |= {"413", "415"}
            for media, content in resolve(body)["content"].items():
                if media != "application/json":
                    problems.append(f"{where}: request body {media}, only application/json is accepted")
                schema = resolve(content["schema"])
                if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
                    problems.append(f"{where}: request body schema is not closed (additionalProperties: false)")
                if "example" in content:
                    for err in validator(content["schema"]).iter_errors(content["example"]):
                        problems.append(f"{where}: request example: {err.message}")
        for status in sorted(needed - responses.keys()):
            problems.append(f"{where}: no {status} response")
        for status, resp in responses.items():
            resp = resolve(resp)
            content = resp.get("content")
            if status == "204":
                if content:
                    problems.append(f"{where}: 204 has a body")
                continue
            if not content or set(content) != {"application/json"}:
                problems.append(f"{where}: {status} is not application/json only")
                continue
            schema = content["application/json"].get("schema")
            if schema is None:
                problems.append(f"{where}: {status} has no schema")
                continue
            if status.startswith(("4", "5")):
                # An error schema must accept only Error objects: check that
                # it refers to Error (directly or first in an allOf).
                s = schema
                if "allOf" in s:
                    s = s["allOf"][0]
                s = s.get("$ref", "")
                if s not in ("#/components/schemas/Error", "#/components/schemas/NotFoundError"):
                    problems.append(f"{where}: {status} is not an Error")
        if "401" in responses and "WWW-Authenticate" not in resolve(responses["401"]).get("headers", {}):
            problems.append(f"{where}: 401 does not document WWW-Authenticate")

patterns = []
walk(doc, "", patterns)
for where, pattern in patterns:
    try:
        re.compile(pattern)
    except re.error as e:
        problems.append(f"{where}: pattern does not compile: {e}")

# protocol::valid_room: 1 to 32 of [A-Za-z0-9_-], exactly as given.
# JSON Schema patterns are searched and their `$` is the very end (\\Z).
room = re.compile(resolve({"$ref": "#/components/schemas/Room"})["pattern"].replace("$", r"\Z"))
ROOMS = {
    "lobby": True, "a": True, "A-b_9": True, "r" * 32: True,
    "": False, "r" * 33: False, "a b": False, " a": False, "a/b": False,
    "a.b": False, "é": False, "a\n": False, "%41": False,
}
for name, valid in ROOMS.items():
    if bool(room.search(name)) != valid:
        problems.append(f"Room pattern: {name!r} should be {'valid' if valid else 'invalid'}")

codes = resolve({"$ref": "#/components/schemas/Error"})["properties"]["error"]["enum"]
if len(codes) != len(set(codes)):
    problems.append("Error: repeated codes in the enum")

for p in problems:
    print(f"lint-api: {DOC}: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
ops = sum(1 for item in doc["paths"].values() for m in item if m in METHODS)
print(f"lint-api: {DOC}: {ops} operations, {len(patterns)} patterns, {len(codes)} error codes: ok")
