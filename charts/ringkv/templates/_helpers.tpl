{{- define "ringkv.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ringkv.labels" -}}
app.kubernetes.io/name: ringkv-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ringkv.selectorLabels" -}}
app.kubernetes.io/name: ringkv-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ringkv.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ringkv.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ringkv.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
