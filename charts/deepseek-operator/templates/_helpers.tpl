{{/* Name of the chart, overridable. */}}
{{- define "deepseek-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "deepseek-operator.fullname" -}}
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

{{- define "deepseek-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "deepseek-operator.labels" -}}
helm.sh/chart: {{ include "deepseek-operator.chart" . }}
{{ include "deepseek-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "deepseek-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "deepseek-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "deepseek-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "deepseek-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Leader election is on when asked for, and always with more than one replica. */}}
{{- define "deepseek-operator.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ else }}false{{ end }}
{{- end }}

{{- define "deepseek-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "deepseek-operator.runtimeImage" -}}
{{- printf "%s:%s" .Values.runtimeDefaults.image.repository (default .Chart.AppVersion .Values.runtimeDefaults.image.tag) }}
{{- end }}

{{/*
The CPU runtime image (--cpu-runtime-image) for models with gpusPerPod 0. By default the CUDA image's
repository and tag with -cpu, the name scripts/build-images.sh gives its CPU build next to it, so that
pointing runtimeDefaults.image at a registry points the CPU image there too.
*/}}
{{- define "deepseek-operator.cpuRuntimeImage" -}}
{{- $cpu := .Values.runtimeDefaults.cpuImage | default dict }}
{{- $repository := $cpu.repository | default .Values.runtimeDefaults.image.repository }}
{{- $tag := $cpu.tag | default (printf "%s-cpu" (default .Chart.AppVersion .Values.runtimeDefaults.image.tag)) }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/*
The operator's rights on the objects it reconciles, one rule per API group and resource, in the
order of OperatorPermissions.Rules (operator/DeepSeek.Operator/Security/OperatorPermissions.cs).
Keep the two equal: tests/DeepSeek.Chart.Tests renders this chart and fails on any difference.
*/}}
{{- define "deepseek-operator.workloadRules" -}}
- apiGroups: ["serving.deepseek-operator.io"]
  resources: ["deepseekmodels"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["serving.deepseek-operator.io"]
  resources: ["deepseekmodels/status"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "create", "update", "delete"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["list", "watch", "create", "update", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "update", "delete"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "watch", "create", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "update", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "watch", "create", "update", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch", "list"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
{{- end }}

{{/* The Lease of leader election, granted only in the release namespace (see workloadRules). */}}
{{- define "deepseek-operator.leaderElectionRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end }}

{{/* A runtime default toleration as the operator's --default-toleration value: key[=value]:Effect. */}}
{{- define "deepseek-operator.tolerationArg" -}}
{{- if .value }}{{ printf "%s=%s:%s" .key .value .effect }}{{ else }}{{ printf "%s:%s" .key .effect }}{{ end }}
{{- end }}

{{/* The gateway's objects: the release's full name with -gateway. */}}
{{- define "deepseek-operator.gatewayName" -}}
{{- printf "%s-gateway" (include "deepseek-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "deepseek-operator.gatewaySelectorLabels" -}}
app.kubernetes.io/name: {{ include "deepseek-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "deepseek-operator.gatewayLabels" -}}
helm.sh/chart: {{ include "deepseek-operator.chart" . }}
{{ include "deepseek-operator.gatewaySelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "deepseek-operator.gatewayImage" -}}
{{- printf "%s:%s" .Values.gateway.image.repository (default .Chart.AppVersion .Values.gateway.image.tag) }}
{{- end }}

{{/* The namespaces whose models the gateway publishes, as JSON: gateway.namespaces, else the operator's watchNamespaces ([] = all). */}}
{{- define "deepseek-operator.gatewayNamespaces" -}}
{{- toJson (.Values.gateway.namespaces | default .Values.watchNamespaces | default list) }}
{{- end }}

{{/*
The gateway's rights on models and pods, in the order of GatewayPermissions.Rules
(gateway/DeepSeek.Gateway/Cluster/GatewayPermissions.cs); its key Secrets are granted by name in
templates/gateway/rbac.yaml. tests/DeepSeek.Chart.Tests fails on any difference.
*/}}
{{- define "deepseek-operator.gatewayRules" -}}
- apiGroups: ["serving.deepseek-operator.io"]
  resources: ["deepseekmodels"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: ["serving.deepseek-operator.io"]
  resources: ["deepseekmodels/scale"]
  verbs: ["patch"]
{{- end }}
