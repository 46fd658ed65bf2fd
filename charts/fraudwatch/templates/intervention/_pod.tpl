{{/* Pod template of the intervention service, shared by its Deployment and StatefulSet. */}}
{{- define "fraudwatch.intervention.podTemplate" -}}
{{- $c := dict "ctx" . "component" "intervention" -}}
metadata:
  labels:
    {{- include "fraudwatch.labels" $c | nindent 4 }}
  annotations:
    checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
spec:
  serviceAccountName: {{ include "fraudwatch.serviceAccountName" $c }}
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
      resources:
        {{- toYaml .Values.intervention.resources | nindent 8 }}
      livenessProbe:
        {{- toYaml .Values.intervention.livenessProbe | nindent 8 }}
      readinessProbe:
        {{- toYaml .Values.intervention.readinessProbe | nindent 8 }}
  volumes:
    {{- include "fraudwatch.commonVolumes" . | nindent 4 }}
    - name: config
      configMap:
        name: {{ include "fraudwatch.fullname" . }}-intervention-config
    {{- if eq .Values.intervention.stateBackend "mongodb" }}
    # Only caches; the state itself is in MongoDB.
    - name: state
      emptyDir:
        sizeLimit: 1Gi
    {{- end }}
  {{- with .Values.intervention.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.intervention.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.intervention.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
