"""The data chart-check.py checks against: values the chart must refuse,
and partial schemas for the Prometheus Operator's CRDs."""
from __future__ import annotations

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
    ("a fan-out pause past 4 passes", {"config": {"rooms": {"fanout_pause": 5}}}, "maximum"),
    ("a fan-out pause maximum that is not a duration", {"config": {"rooms": {"fanout_pause_max": "soon"}}},
     "fanout_pause_max"),
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
