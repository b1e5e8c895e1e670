{{- define "meetguard.name" -}}{{ .Chart.Name }}{{- end -}}

{{- define "meetguard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "meetguard.labels" -}}
app.kubernetes.io/name: {{ include "meetguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "meetguard.selector" -}}
app.kubernetes.io/name: {{ include "meetguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* meetguard.yaml: the values turned into the gateway's config; secrets are ${VAR}s and files from the Secret. */}}
{{- define "meetguard.config" -}}
{{- $r := .Values.redis -}}
{{- if and $r.addr $r.sentinel.master -}}{{ fail "redis: set addr or sentinel.master, not both" }}{{- end -}}
{{- if not (or $r.addr $r.sentinel.master) -}}{{ fail "redis: set addr or sentinel.master (replicas share state through Redis)" }}{{- end -}}
{{- $redis := dict "password" "${REDIS_PASSWORD}" "db" $r.db -}}
{{- if $r.sentinel.master -}}
{{- $_ := set $redis "sentinel" (dict "master" $r.sentinel.master "addrs" $r.sentinel.addrs "password" "${SENTINEL_PASSWORD}") -}}
{{- else -}}
{{- $_ := set $redis "addr" $r.addr -}}
{{- end -}}
{{- $base := dict
  "listen" "0.0.0.0:8080"
  "public_url" .Values.publicURL
  "trusted_proxies" .Values.trustedProxies
  "oidc" (dict "issuer" .Values.oidc.issuer "client_id" .Values.oidc.clientID "client_secret_file" "/etc/meetguard/secrets/oidc-client-secret")
  "session" (dict "secret_file" "/etc/meetguard/secrets/session-secret")
  "upstreams" .Values.upstreams
  "store" (dict "kind" "redis" "redis" $redis)
  "rooms" (dict "ticket_key_file" "/etc/meetguard/secrets/ticket-key")
  "audit" (dict "path" "/var/lib/meetguard/audit.log")
  "assertion" (dict "key_file" "/etc/meetguard/secrets/assertion.key")
  "e2ee" (dict "key_file" "/etc/meetguard/secrets/e2ee.key")
  "admin" (dict "listen" "0.0.0.0:9090")
-}}
{{- mergeOverwrite $base (deepCopy .Values.config) | toYaml -}}
{{- end -}}
