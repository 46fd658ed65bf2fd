{{/*
"true" when POST /v1/decisions is served by its own Deployment (<release>-fraudwatch-decisions):
intervention.decisions.enabled unset (auto) or true, with the mongodb state backend. With sqlite
the state is one SQLite file on the intervention pod's ReadWriteOnce volume, which no other pod
can open, so that pod answers /v1/decisions itself; asking for the dedicated Deployment there
is refused.
*/}}
{{- define "fraudwatch.decisions.dedicated" -}}
{{- $i := .Values.intervention -}}
{{- $e := $i.decisions.enabled -}}
{{- $set := kindIs "bool" $e -}}
{{- if and $i.enabled (or (not $set) $e) -}}
{{- if eq $i.stateBackend "mongodb" -}}
true
{{- else if $set -}}
{{- fail "intervention.decisions.enabled=true needs intervention.stateBackend=mongodb: with sqlite the service's state (idempotency records, recorded decisions) is one SQLite file on the intervention pod's ReadWriteOnce volume, which a second pod cannot open, so no more than that one pod can answer /v1/decisions. Leave intervention.decisions.enabled unset (the intervention pod answers /v1/decisions) or use stateBackend=mongodb to scale the decision route" -}}
{{- end -}}
{{- end -}}
{{- end -}}
