{{/*
Airlock's own object names are fixed, as api/src/cluster.ts (OBJECT_NAMES, APPROVAL_KEY_SECRET)
spells them: the operator, the webhook and the sidecar look for them by these names.
  Services airlock-operator (8443) and airlock-webhook (443 -> 9443); Secrets airlock-ca,
  airlock-webhook-tls, airlock-control-tls, airlock-approval-key; MutatingWebhookConfiguration
  airlock-inject; ValidatingWebhookConfiguration airlock-validate.
*/}}

{{/* helm.sh/chart label value */}}
{{- define "airlock.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels of every object. app.kubernetes.io/part-of=airlock marks Airlock's own objects
(api/src/cluster.ts COMPONENT_LABEL): the webhook never injects them.
*/}}
{{- define "airlock.labels" -}}
helm.sh/chart: {{ include "airlock.chart" . }}
app.kubernetes.io/name: airlock
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: airlock
{{- end -}}

{{/* selector labels of one component: (dict "root" $ "component" "operator") */}}
{{- define "airlock.selectorLabels" -}}
app.kubernetes.io/name: airlock
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "airlock.componentLabels" -}}
{{ include "airlock.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* an image reference: (dict "repository" r "tag" t "digest" d "root" $); the tag defaults to appVersion */}}
{{- define "airlock.imageRef" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "airlock.image" -}}
{{- include "airlock.imageRef" (dict "repository" .Values.image.repository "tag" .Values.image.tag "digest" .Values.image.digest "root" .) -}}
{{- end -}}

{{/* the injected sidecar's image: sidecar.image when it names a repository, else the chart's image */}}
{{- define "airlock.sidecarImage" -}}
{{- $s := .Values.sidecar.image -}}
{{- if $s.repository -}}
{{- include "airlock.imageRef" (dict "repository" $s.repository "tag" $s.tag "digest" $s.digest "root" .) -}}
{{- else -}}
{{- include "airlock.image" . -}}
{{- end -}}
{{- end -}}

{{/* https URL of the control API that sidecars are given */}}
{{- define "airlock.controlUrl" -}}
{{- printf "https://airlock-operator.%s.svc:8443" .Release.Namespace -}}
{{- end -}}

{{/* the DNS names of a Service's serving certificate, as the operator issues them */}}
{{- define "airlock.serviceDnsNames" -}}
- {{ .service }}
- {{ .service }}.{{ .root.Release.Namespace }}
- {{ .service }}.{{ .root.Release.Namespace }}.svc
- {{ .service }}.{{ .root.Release.Namespace }}.svc.{{ .root.Values.clusterDomain }}
{{- end -}}

{{/* namespaces whose pods the injection webhooks never see */}}
{{- define "airlock.excludedNamespaces" -}}
{{- $all := concat (list "kube-system" .Release.Namespace) .Values.webhook.excludedNamespaces | uniq | sortAlpha -}}
{{- toYaml $all -}}
{{- end -}}

{{/* pod-level fields shared by both Deployments: (dict "root" $ "component" "operator" "values" .Values.operator) */}}
{{- define "airlock.podScheduling" -}}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .values.affinity }}
affinity:
  {{- toYaml .values.affinity | nindent 2 }}
{{- else }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "airlock.selectorLabels" . | nindent 14 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* clientConfig of a webhook: (dict "root" $ "path" "/mutate/pods"); no caBundle (see webhookconfigurations.yaml) */}}
{{- define "airlock.webhookClient" -}}
service:
  namespace: {{ .root.Release.Namespace }}
  name: airlock-webhook
  port: 443
  path: {{ .path }}
{{- end -}}
