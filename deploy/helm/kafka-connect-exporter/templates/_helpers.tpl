{{/* Chart name, overridable. It is also the ServiceMonitor's job label, which KafkaConnectExporterDown selects. */}}
{{- define "kce.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of every object: the release name, followed by the chart name unless the release name contains it. */}}
{{- define "kce.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kce.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kce.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kce.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kce.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The image the Dockerfile builds: `docker build -t kafka-connect-exporter:<appVersion> .` */}}
{{- define "kce.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "kce.configMapName" -}}
{{- default (include "kce.fullname" .) .Values.existingConfigMap -}}
{{- end -}}

{{- define "kce.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kce.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* HTTPS when the web config turns TLS on: probes and the ServiceMonitor must speak it too. */}}
{{- define "kce.scheme" -}}
{{- if and .Values.webConfig.existingSecret .Values.webConfig.tls -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/* A probe from values, with the scheme filled in from the web config when not given. */}}
{{- define "kce.probe" -}}
{{- $probe := deepCopy .probe -}}
{{- if $probe.httpGet -}}
{{- $_ := set $probe.httpGet "scheme" (default (include "kce.scheme" .root) $probe.httpGet.scheme) -}}
{{- end -}}
{{- toYaml $probe -}}
{{- end -}}

{{/* host:port of the worker paired with this pod in local-worker mode; $(POD_INDEX) is expanded by Kubernetes. */}}
{{- define "kce.localWorkerAddress" -}}
{{- $lw := .Values.localWorker -}}
{{- printf "%s$(POD_INDEX).%s.%s.svc:%d" $lw.workerPodPrefix $lw.workerService (default .Release.Namespace $lw.workerNamespace) (int $lw.workerPort) -}}
{{- end -}}
