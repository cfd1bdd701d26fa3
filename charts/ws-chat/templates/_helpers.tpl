{{/* Names, labels and the checks that must fail a render. */}}

{{- define "ws-chat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ws-chat.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ws-chat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ws-chat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ws-chat.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ws-chat.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ws-chat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ws-chat.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ws-chat.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding tokens.toml (and the smoke token). */}}
{{- define "ws-chat.authSecretName" -}}
{{- default (printf "%s-auth" (include "ws-chat.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* The Secret holding the server API's keys, one entry per key name. */}}
{{- define "ws-chat.apiSecretName" -}}
{{- default (printf "%s-api-keys" (include "ws-chat.fullname" .)) .Values.api.existingSecret }}
{{- end }}

{{/* Whether a Redis password file is mounted, and from which Secret. */}}
{{- define "ws-chat.redisSecretName" -}}
{{- if .Values.redis.existingSecret }}
{{- .Values.redis.existingSecret }}
{{- else if .Values.redis.password }}
{{- include "ws-chat.authSecretName" . }}
{{- end }}
{{- end }}

{{- define "ws-chat.redisSecretKey" -}}
{{- if .Values.redis.existingSecret }}
{{- .Values.redis.existingSecretKey }}
{{- else }}
{{- "redis-password" }}
{{- end }}
{{- end }}

{{/*
The plain smoke-test token: from values, else the one already in the
release's Secret (lookup; empty when rendering offline), else a new one.
*/}}
{{- define "ws-chat.smokeToken" -}}
{{- if .Values.tests.smokeToken }}
{{- .Values.tests.smokeToken }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "ws-chat.authSecretName" .) }}
{{- if and $existing $existing.data (hasKey $existing.data .Values.auth.smokeTokenKey) }}
{{- index $existing.data .Values.auth.smokeTokenKey | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The only room the smoke token may join: smoke-<release>, cut to the 32
characters of a room name (the server cuts a longer one the same way).
*/}}
{{- define "ws-chat.smokeRoom" -}}
{{- printf "smoke-%s" .Release.Name | trunc 32 | trimSuffix "-" }}
{{- end }}

{{- define "ws-chat.smokeOrigin" -}}
{{- if .Values.tests.origin }}
{{- .Values.tests.origin }}
{{- else if .Values.auth.allowedOrigins }}
{{- first .Values.auth.allowedOrigins }}
{{- else }}
{{- "http://localhost:8080" }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds = preStop + drain window + margin.
SIGTERM arrives only after the preStop hook returns, and the kubelet's grace
period clock starts before the hook runs, so the hook's time counts too. The
margin covers the last close frames flushing (session.close_timeout) and exit.
*/}}
{{- define "ws-chat.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown }}
{{- $pre := ternary 0 (int $s.preStopSeconds) (eq $s.preStopMode "none") }}
{{- add $pre (int $s.drainWindowSeconds) (int $s.marginSeconds) }}
{{- end }}

{{/*
The settings file: .Values.config with the chart-owned keys added. Setting one
of those in .Values.config is refused so each setting has one place.
*/}}
{{- define "ws-chat.configToml" -}}
{{- $auth := dict "tokens" (list) "tokens_file" "/etc/ws-chat/secrets/tokens.toml" }}
{{- if .Values.auth.allowedOrigins }}
{{- $_ := set $auth "allowed_origins" .Values.auth.allowedOrigins }}
{{- end }}
{{- $broker := dict "kind" .Values.broker.kind }}
{{- if eq .Values.broker.kind "redis" }}
{{- $mode := .Values.redis.mode | default "standalone" }}
{{- $_ := set $broker "redis_mode" $mode }}
{{- if eq $mode "standalone" }}
{{- $_ := set $broker "redis_url" .Values.redis.url }}
{{- else }}
{{- $_ := set $broker "redis_urls" .Values.redis.urls }}
{{- end }}
{{- if eq $mode "sentinel" }}
{{- $_ := set $broker "sentinel_master" .Values.redis.sentinelMaster }}
{{- end }}
{{- if include "ws-chat.redisSecretName" . }}
{{- $_ := set $broker "redis_password_file" "/etc/ws-chat/secrets/redis-password" }}
{{- end }}
{{- if .Values.redis.tlsCaSecret }}
{{- $_ := set $broker "redis_ca_file" "/etc/ws-chat/secrets/redis-ca.pem" }}
{{- end }}
{{- if .Values.redis.tlsClientSecret }}
{{- $_ := set $broker "redis_client_cert_file" "/etc/ws-chat/secrets/redis-client.crt" }}
{{- $_ := set $broker "redis_client_key_file" "/etc/ws-chat/secrets/redis-client.key" }}
{{- end }}
{{- end }}
{{- $owned := dict "auth" $auth "broker" $broker "shutdown" (dict "drain_window" (printf "%ds" (int .Values.shutdown.drainWindowSeconds))) "telemetry" (dict "log_format" "json") }}
{{- $cfg := deepCopy .Values.config }}
{{- range $section, $keys := $owned }}
{{- $given := get $cfg $section | default dict }}
{{- range $key, $_ := $keys }}
{{- if hasKey $given $key }}
{{- fail (printf "config.%s.%s is set by the chart; use the dedicated value instead (see values.yaml)" $section $key) }}
{{- end }}
{{- end }}
{{- $_ := set $cfg $section (merge $given $keys) }}
{{- end }}
{{- /* Written by hand, not toToml: values arrive as float64 and toToml
       would write 50000 as 50000.0, which the server rejects for integers. */}}
{{- range $section := keys $cfg | sortAlpha }}
[{{ $section }}]
{{- $body := get $cfg $section }}
{{- range $key := keys $body | sortAlpha }}
{{- if not (and (eq $section "rooms") (eq $key "namespaces")) }}
{{ $key }} = {{ include "ws-chat.tomlValue" (get $body $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.auth.jwt }}
{{- if or .keys .jwksUrl }}
[auth.jwt]
jwks_url = {{ .jwksUrl | toJson }}
audience = {{ include "ws-chat.tomlValue" (.audience | default list) }}
issuer = {{ include "ws-chat.tomlValue" (.issuer | default list) }}
leeway = {{ .leeway | default "5s" | toJson }}
{{- range .keys }}
[[auth.jwt.keys]]
alg = {{ .alg | toJson }}
{{- with .kid }}
kid = {{ . | toJson }}
{{- end }}
{{- with .secretKey }}
secret_file = {{ printf "/etc/ws-chat/jwt/%s" . | toJson }}
{{- end }}
{{- with .publicKeyKey }}
public_key_file = {{ printf "/etc/ws-chat/jwt/%s" . | toJson }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.config.rooms }}
{{- range .namespaces }}
{{- $ns := . }}
[[rooms.namespaces]]
{{- range $key := keys $ns | sortAlpha }}
{{ $key }} = {{ include "ws-chat.tomlValue" (get $ns $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* The server API: only the path of each key's file, never the key
       (that is in the Secret mounted at /etc/ws-chat/api-keys). */}}
{{- with .Values.api }}
[api]
idempotency_window = {{ .idempotencyWindow | toJson }}
max_body_bytes = {{ include "ws-chat.tomlValue" .maxBodyBytes }}
{{- range .keys }}
[[api.keys]]
name = {{ .name | toJson }}
scopes = {{ include "ws-chat.tomlValue" .scopes }}
key_file = {{ printf "/etc/ws-chat/api-keys/%s" .name | toJson }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ws-chat.tomlValue" -}}
{{- $k := kindOf . }}
{{- if eq $k "string" }}{{ toJson . }}
{{- else if eq $k "bool" }}{{ . }}
{{- else if or (eq $k "float64") (eq $k "int64") (eq $k "int") }}
{{- if eq (float64 .) (float64 (int64 .)) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if eq $k "slice" }}[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ include "ws-chat.tomlValue" $v }}{{ end }}]
{{- else }}{{ fail (printf "config: cannot write a %s as a TOML value; use strings, numbers, booleans and lists" $k) }}
{{- end }}
{{- end }}

{{/* Refuse combinations that would deploy something broken. */}}
{{- define "ws-chat.validate" -}}
{{- $multi := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}
{{- if and $multi (eq .Values.broker.kind "memory") }}
{{- fail "broker.kind=memory keeps rooms, history and fan-out inside one process: with replicaCount > 1 or autoscaling.enabled, clients on different pods would not see each other's messages. Set broker.kind=redis and redis.url, or use one replica." }}
{{- end }}
{{- if and .Values.auth.jwt.keys (not .Values.auth.jwt.existingSecret) }}
{{- fail "auth.jwt.keys name keys of a Secret you manage: set auth.jwt.existingSecret" }}
{{- end }}
{{- $mode := .Values.redis.mode | default "standalone" }}
{{- if and (eq .Values.broker.kind "redis") (eq $mode "standalone") (not .Values.redis.url) }}
{{- fail "broker.kind=redis needs redis.url (e.g. redis://redis-master.redis.svc:6379/0)" }}
{{- end }}
{{- if and (eq .Values.broker.kind "redis") (ne $mode "standalone") (not .Values.redis.urls) }}
{{- fail (printf "redis.mode=%s needs redis.urls (cluster seed nodes or the Sentinels)" $mode) }}
{{- end }}
{{- if and (eq .Values.broker.kind "redis") (eq $mode "sentinel") (not .Values.redis.sentinelMaster) }}
{{- fail "redis.mode=sentinel needs redis.sentinelMaster (the master's name in the Sentinels' configuration)" }}
{{- end }}
{{- if and (eq $mode "standalone") .Values.redis.urls }}
{{- fail "redis.urls is for redis.mode=cluster or sentinel; standalone uses redis.url" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- $first := ternary .Values.redis.url (first (concat .Values.redis.urls (list ""))) (eq $mode "standalone") }}
{{- if and (eq .Values.broker.kind "redis") (or .Values.redis.tlsCaSecret .Values.redis.tlsClientSecret) (not (hasPrefix "rediss://" $first)) }}
{{- fail "redis.tlsCaSecret and redis.tlsClientSecret need a rediss:// redis.url (TLS)" }}
{{- end }}
{{- if and .Values.redis.password .Values.redis.existingSecret }}
{{- fail "set redis.password or redis.existingSecret, not both" }}
{{- end }}
{{- if and .Values.auth.existingSecret .Values.auth.tokens }}
{{- fail "auth.tokens is ignored when auth.existingSecret is set: put the grants in that Secret" }}
{{- end }}
{{- $apiNames := dict }}
{{- range $i, $k := .Values.api.keys }}
{{- if hasKey $apiNames $k.name }}
{{- fail (printf "api.keys[%d]: the name %q is used twice; names must be unique (they name the key files)" $i $k.name) }}
{{- end }}
{{- $_ := set $apiNames $k.name true }}
{{- if and $.Values.api.existingSecret (hasKey $k "key") }}
{{- fail (printf "api.keys[%d] (%s): key is ignored when api.existingSecret is set: put it in that Secret under %q" $i $k.name $k.name) }}
{{- end }}
{{- if and (not $.Values.api.existingSecret) (not $k.key) }}
{{- fail (printf "api.keys[%d] (%s) needs key, or set api.existingSecret to a Secret holding an entry %q" $i $k.name $k.name) }}
{{- end }}
{{- end }}
{{- end }}
