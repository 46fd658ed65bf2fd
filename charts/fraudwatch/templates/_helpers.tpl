{{/* Chart name, truncated to the 63-character label limit. */}}
{{- define "fraudwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name prefix: "<release>-fraudwatch" unless overridden. */}}
{{- define "fraudwatch.fullname" -}}
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

{{/* Name of one component's objects: (dict "ctx" $ "component" "intervention"). */}}
{{- define "fraudwatch.componentName" -}}
{{- printf "%s-%s" (include "fraudwatch.fullname" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels. Immutable on Deployments and StatefulSets: never add a version or anything a
values change can alter (tests/infra/chart/test_chart_upgrade_safety.py guards this).
*/}}
{{- define "fraudwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fraudwatch.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of a component's objects. */}}
{{- define "fraudwatch.labels" -}}
{{ include "fraudwatch.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: fraudwatch
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The image reference: a digest pins the exact build and wins over the tag. */}}
{{- define "fraudwatch.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Service account name of one component. */}}
{{- define "fraudwatch.serviceAccountName" -}}
{{- include "fraudwatch.componentName" . -}}
{{- end -}}

{{/* Pod-level settings every workload shares (after the pod's own serviceAccountName). */}}
{{- define "fraudwatch.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Container settings every workload shares. */}}
{{- define "fraudwatch.containerCommon" -}}
image: {{ include "fraudwatch.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end -}}

{{/* Environment every container shares: writable home, S3 endpoint and credentials. */}}
{{- define "fraudwatch.commonEnv" -}}
- name: FRAUDWATCH_HOME
  value: /var/lib/fraudwatch
- name: HOME
  value: /tmp
{{- with .Values.s3.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- if .Values.s3.existingSecret }}
- name: AWS_SHARED_CREDENTIALS_FILE
  value: /var/run/secrets/s3/credentials
{{- if and .Values.s3.accessKeyIdKey .Values.s3.secretAccessKeyKey }}
# fraudwatch's own s3:// reads and writes (pyarrow) take the keys from these two variables
# only; Spark's s3a takes them from here or from the credentials file.
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.existingSecret }}
      key: {{ .Values.s3.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.existingSecret }}
      key: {{ .Values.s3.secretAccessKeyKey }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Volume mounts every container shares ("state" is added by the caller when it has one). */}}
{{- define "fraudwatch.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.s3.existingSecret }}
- name: s3-credentials
  mountPath: /var/run/secrets/s3
  readOnly: true
{{- end }}
{{- end -}}

{{/* Volumes every pod shares. */}}
{{- define "fraudwatch.commonVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 2Gi
{{- if .Values.s3.existingSecret }}
- name: s3-credentials
  secret:
    secretName: {{ .Values.s3.existingSecret }}
    items:
      - key: {{ .Values.s3.credentialsKey }}
        path: credentials
{{- end }}
{{- end -}}

{{/*
NetworkPolicy egress shared by every component: cluster DNS plus the listed TCP ports.
*/}}
{{- define "fraudwatch.egressRules" -}}
- to:
    - namespaceSelector: {}
      podSelector:
        matchLabels:
          k8s-app: kube-dns
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
- ports:
  {{- range .Values.networkPolicy.egressPorts }}
    - {protocol: TCP, port: {{ . }}}
  {{- end }}
{{- with .Values.networkPolicy.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end -}}
