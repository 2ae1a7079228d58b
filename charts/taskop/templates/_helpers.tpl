{{/* Names and labels of every object (cert-manager chart conventions). */}}

{{- define "taskop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: the release name, with the chart name appended unless it already has it. */}}
{{- define "taskop.fullname" -}}
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

{{- define "taskop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades. */}}
{{- define "taskop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taskop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "taskop.labels" -}}
helm.sh/chart: {{ include "taskop.chart" . }}
{{ include "taskop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: taskop
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "taskop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "taskop.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "taskop.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Where BBS DesireTask creates Tasks: bbs.namespace, else watchNamespace, else the release's. */}}
{{- define "taskop.bbsNamespace" -}}
{{- $ns := default (default .Release.Namespace .Values.watchNamespace) .Values.bbs.namespace }}
{{- if and .Values.watchNamespace (ne $ns .Values.watchNamespace) }}
{{- fail (printf "bbs.namespace (%s) must equal watchNamespace (%s): the operator runs only the Tasks it watches" $ns .Values.watchNamespace) }}
{{- end }}
{{- $ns }}
{{- end }}

{{- define "taskop.peering" -}}
{{- if gt (int .Values.replicaCount) 1 }}{{ default (include "taskop.fullname" .) .Values.peering.name }}{{ end }}
{{- end }}

{{/* A number as the operator parses it: whole numbers without exponent (YAML numbers are floats);
booleans and strings as they are ("" must stay empty: it means "not set"). */}}
{{- define "taskop.number" -}}
{{- if or (kindIs "bool" .) (kindIs "string" .) }}{{ . }}{{ else if eq (float64 .) (floor .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- end }}

{{/* The Secret holding the BBS API's TLS material; empty when it serves plain HTTP. */}}
{{- define "taskop.bbsTLSSecret" -}}
{{- if and .Values.bbs.enabled (not .Values.bbs.insecure) }}
{{- if .Values.bbs.tls.secretName }}{{ .Values.bbs.tls.secretName }}
{{- else if .Values.bbs.tls.certManager.issuerName }}{{ include "taskop.fullname" . }}-bbs-tls
{{- else }}{{ fail "the BBS API needs mutual TLS: set bbs.tls.secretName to a Secret holding tls.crt, tls.key and ca.crt (the CA of client certificates), or bbs.tls.certManager.issuerName to have cert-manager issue it; or set bbs.insecure=true for plain HTTP without authentication (anyone reaching the Service can create Tasks), or bbs.enabled=false" }}
{{- end }}
{{- end }}
{{- end }}
