{{/* Pod template of the intervention service, shared by its Deployment and StatefulSet and by
the decisions Deployment (same image, command and config; call with
dict "ctx" $ "component" "intervention"|"decisions" "settings" <resources and probes>). */}}
{{- define "fraudwatch.intervention.podTemplate" -}}
{{- $c := dict "ctx" .ctx "component" .component -}}
{{- $settings := .settings -}}
{{- with .ctx -}}
metadata:
  labels:
    {{- include "fraudwatch.labels" $c | nindent 4 }}
  annotations:
    checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
spec:
  # The decisions pods run as the intervention service's account (same service, same rights).
  serviceAccountName: {{ include "fraudwatch.serviceAccountName" (dict "ctx" . "component" "intervention") }}
  # The service never calls the Kubernetes API.
  automountServiceAccountToken: false
  {{- include "fraudwatch.podCommon" . | nindent 2 }}
  containers:
    - name: intervention
      {{- include "fraudwatch.containerCommon" . | nindent 6 }}
      args: ["serve", "--host", "0.0.0.0", "--port", {{ .Values.intervention.port | quote }}]
      ports:
        - name: http
          containerPort: {{ .Values.intervention.port }}
          protocol: TCP
      env:
        {{- include "fraudwatch.commonEnv" . | nindent 8 }}
        - name: FRAUDWATCH_CONFIG
          value: /etc/fraudwatch/intervention.toml
        # The service reads these two secrets from the environment only
        # (fraudwatch/intervention/config.py); they come from the existing Secret.
        {{- if eq .Values.intervention.stateBackend "mongodb" }}
        - name: FRAUDWATCH_STATE_URL
          valueFrom:
            secretKeyRef:
              name: {{ .Values.intervention.existingSecret }}
              key: state-url
        {{- end }}
        - name: FRAUDWATCH_HOOK_SECRET
          valueFrom:
            secretKeyRef:
              name: {{ .Values.intervention.existingSecret }}
              key: hook-hmac-secret
        {{- with .Values.intervention.scoredResults }}
        - name: FRAUDWATCH_SCORED
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.intervention.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      volumeMounts:
        {{- include "fraudwatch.commonVolumeMounts" . | nindent 8 }}
        - name: config
          mountPath: /etc/fraudwatch
          readOnly: true
        - name: state
          mountPath: /var/lib/fraudwatch
        {{- if .Values.intervention.decisions.models.existingClaim }}
        # The model registry POST /v1/decisions scores with (decisions.registry defaults to
        # $FRAUDWATCH_HOME/models, i.e. here).
        - name: models
          mountPath: /var/lib/fraudwatch/models
          readOnly: true
        {{- end }}
      resources:
        {{- toYaml $settings.resources | nindent 8 }}
      livenessProbe:
        {{- toYaml $settings.livenessProbe | nindent 8 }}
      readinessProbe:
        {{- toYaml $settings.readinessProbe | nindent 8 }}
  volumes:
    {{- include "fraudwatch.commonVolumes" . | nindent 4 }}
    - name: config
      configMap:
        name: {{ include "fraudwatch.fullname" . }}-intervention-config
    {{- if eq .Values.intervention.stateBackend "mongodb" }}
    # Only caches and the decision route's per-user history; the state itself is in MongoDB.
    - name: state
      emptyDir:
        sizeLimit: 1Gi
    {{- end }}
    {{- with .Values.intervention.decisions.models.existingClaim }}
    - name: models
      persistentVolumeClaim:
        claimName: {{ . }}
        readOnly: true
    {{- end }}
  {{- with .Values.intervention.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.intervention.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $settings.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}
