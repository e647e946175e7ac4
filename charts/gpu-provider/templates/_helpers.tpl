{{/* Names, labels and the shared pod pieces of the gpu-provider chart. */}}
{{- define "gp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "gp.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "gp.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "gp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gpu-provider-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* selector labels of one component: include "gp.selector" (list $ "operator") */}}
{{- define "gp.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "gp.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "gp.componentLabels" -}}
{{ include "gp.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "gp.component" -}}
{{- printf "%s-%s" (include "gp.fullname" (index . 0)) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gp.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* Hardened container securityContext (restricted Pod Security). */}}
{{- define "gp.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "gp.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Settings every process reads: the ConfigMap file, the namespace, the RPC URLs Secret. */}}
{{- define "gp.settingsEnv" -}}
- name: GPU_PROVIDER_CONFIG
  value: /etc/gpu-provider/config.yaml
- name: GPU_PROVIDER_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- if .Values.chainRpcSecret.name }}
- name: GPU_PROVIDER_CHAIN__RPC_URLS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.chainRpcSecret.name }}
      key: {{ .Values.chainRpcSecret.key }}
{{- end }}
{{- end -}}

{{- define "gp.settingsVolume" -}}
- name: settings
  configMap:
    name: {{ include "gp.component" (list . "settings") }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{- define "gp.settingsMount" -}}
- name: settings
  mountPath: /etc/gpu-provider
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "gp.pullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "gp.metricsPort" -}}
{{- (.Values.config.metrics_port | default 9090) -}}
{{- end -}}

{{- define "gp.probePort" -}}
{{- $op := .Values.config.operator | default dict -}}
{{- ($op.probe_port | default 8080) -}}
{{- end -}}

{{/* Where the gateway keeps tenants' pull Secrets: render/pullsecret.py pull_secret_namespace. */}}
{{- define "gp.pullSecretNamespace" -}}
{{- printf "%s-pull-secrets" .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end }}
