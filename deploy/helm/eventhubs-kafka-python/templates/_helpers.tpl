{{/* Names and labels, as `helm create` makes them. */}}
{{- define "ehkp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ehkp.fullname" -}}
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

{{/* The name of one service's objects: ehkp.component (dict "root" $ "component" "consumer") */}}
{{- define "ehkp.component" -}}
{{- printf "%s-%s" (include "ehkp.fullname" .root | trunc 54 | trimSuffix "-") .component }}
{{- end }}

{{- define "ehkp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ehkp.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "ehkp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ehkp.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: {{ include "ehkp.name" .root }}
{{- end }}

{{/* The Event Hubs namespace's host name, from a name or a host name. */}}
{{- define "ehkp.eventHubsHost" -}}
{{- $ns := required "eventHubs.namespace is required with broker: eventHubs (contoso or contoso.servicebus.windows.net)" .Values.eventHubs.namespace }}
{{- if contains "." $ns }}{{ $ns }}{{ else }}{{ printf "%s.servicebus.windows.net" $ns }}{{ end }}
{{- end }}

{{- define "ehkp.defaultSecretKey" -}}
{{- if eq .Values.broker "eventHubs" }}connection-string{{ else }}sasl-password{{ end }}
{{- end }}

{{/*
The Secret one service (or KEDA) reads: ehkp.secretRef (dict "root" $ "override" .Values.consumer.secret)
gives "name key". An override's name wins, then `secret.name`, then the Secret
the chart makes from `secret.value`.
*/}}
{{- define "ehkp.secretRef" -}}
{{- $v := .root.Values }}
{{- $name := "" }}
{{- $key := "" }}
{{- if and .override .override.name }}
{{- $name = .override.name }}
{{- $key = .override.key }}
{{- else if $v.secret.name }}
{{- $name = $v.secret.name }}
{{- $key = $v.secret.key }}
{{- else if $v.secret.value }}
{{- $name = include "ehkp.fullname" .root }}
{{- $key = $v.secret.key }}
{{- else }}
{{- if eq $v.broker "eventHubs" }}
{{- fail "the services need an Event Hubs connection string: set secret.name to a Secret holding it (or secret.value), or eventHubs.auth: entraId" }}
{{- else }}
{{- fail (printf "kafka.securityProtocol %s needs the SASL password: set secret.name to a Secret holding it (or secret.value)" $v.kafka.securityProtocol) }}
{{- end }}
{{- end }}
{{- printf "%s %s" $name (default (include "ehkp.defaultSecretKey" .root) $key) }}
{{- end }}

{{/* The environment of one service: ehkp.env (dict "root" $ "component" "consumer") */}}
{{- define "ehkp.env" -}}
{{- $v := .root.Values }}
{{- $c := index $v .component }}
{{- if eq $v.broker "eventHubs" }}
- name: EVENTHUBS_BROKER
  value: {{ printf "%s:9093" (include "ehkp.eventHubsHost" .root) | quote }}
- name: EVENTHUBS_TOPIC
  value: {{ $v.eventHubs.eventHub | quote }}
{{- if eq $v.eventHubs.auth "entraId" }}
- name: EVENTHUBS_NAMESPACE
  value: {{ include "ehkp.eventHubsHost" .root | quote }}
{{- else }}
{{- include "ehkp.secretEnv" (dict "root" .root "component" .component "variable" "EVENTHUBS_CONNECTION_STRING") }}
{{- end }}
{{- if eq .component "sink" }}
- name: EVENTHUBS_CONSUMER_GROUPID
  value: {{ $v.sink.groupId | quote }}
{{- else if eq .component "consumer" }}
- name: EVENTHUBS_CONSUMER_GROUPID
  value: {{ $v.eventHubs.consumerGroup | quote }}
{{- else }}
- name: EVENTHUBS_TIER
  value: {{ $v.eventHubs.tier | quote }}
{{- end }}
{{- else }}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required with broker: kafka" $v.kafka.bootstrapServers | quote }}
- name: KAFKA_TOPIC
  value: {{ $v.kafka.topic | quote }}
{{- if eq .component "sink" }}
- name: KAFKA_GROUP_ID
  value: {{ $v.sink.groupId | quote }}
{{- else if eq .component "consumer" }}
- name: KAFKA_GROUP_ID
  value: {{ $v.kafka.groupId | quote }}
{{- end }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $v.kafka.securityProtocol | quote }}
{{- if hasPrefix "SASL_" $v.kafka.securityProtocol }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $v.kafka.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ required "kafka.sasl.username is required with SASL" $v.kafka.sasl.username | quote }}
{{- include "ehkp.secretEnv" (dict "root" .root "component" .component "variable" "KAFKA_SASL_PASSWORD") }}
{{- end }}
{{- end }}
- name: METRICS_PORT
  value: {{ $v.metricsPort | quote }}
- name: LOG_FORMAT
  value: json
{{- $env := merge (deepCopy $c.env) $v.env }}
{{- if eq .component "sink" }}
{{- /* The sink's handler and database are the chart's: a CONSUMER_HANDLER in env is the consumer's. */}}
{{- $env = omit $env "CONSUMER_HANDLER" "SINK_DATABASE_URL" "SINK_DATABASE_URL_FILE" }}
- name: CONSUMER_HANDLER
  value: {{ printf "examples.postgres_sink:%s" $v.sink.mode | quote }}
{{- $database := include "ehkp.databaseRef" .root | splitList " " }}
{{- if $v.secret.asFile }}
- name: SINK_DATABASE_URL_FILE
  value: {{ printf "%s/%s" (include "ehkp.databaseDir" .root) (index $database 1) | quote }}
{{- else }}
- name: SINK_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ index $database 0 }}
      key: {{ index $database 1 }}
{{- end }}
{{- end }}
{{- range $name, $value := $env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* "name key" of the Secret holding the sink's database URL. */}}
{{- define "ehkp.databaseRef" -}}
{{- $secret := .Values.sink.database.secret }}
{{- printf "%s %s" (required "sink.database.secret.name is required with sink.enabled: a Secret holding the database's URL, postgresql://user:password@host:5432/db" $secret.name) (default "database-url" $secret.key) }}
{{- end }}

{{- define "ehkp.databaseDir" -}}
/run/secrets/postgres-sink
{{- end }}

{{/* The image one service runs: the sink runs the image's postgres-sink target. */}}
{{- define "ehkp.image" -}}
{{- $v := .root.Values }}
{{- $tag := default .root.Chart.AppVersion $v.image.tag }}
{{- if eq .component "sink" }}
{{- printf "%s:%s" (default $v.image.repository $v.sink.image.repository) (default (printf "%s-postgres-sink" $tag) $v.sink.image.tag) }}
{{- else }}
{{- printf "%s:%s" $v.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "ehkp.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create }}{{ include "ehkp.component" . }}{{ else }}default{{ end }}
{{- end }}


{{/*
The secret's variable of one service: from the Secret by secretKeyRef, or, with
secret.asFile, VARIABLE_FILE naming the Secret's key mounted as a file, so that
the pod's spec holds no secret in its environment.
*/}}
{{- define "ehkp.secretEnv" -}}
{{- $c := index .root.Values .component }}
{{- $ref := splitList " " (include "ehkp.secretRef" (dict "root" .root "override" $c.secret)) }}
{{- if .root.Values.secret.asFile }}
- name: {{ .variable }}_FILE
  value: {{ printf "%s/%s" (include "ehkp.secretDir" .root) (index $ref 1) | quote }}
{{- else }}
- name: {{ .variable }}
  valueFrom:
    secretKeyRef:
      name: {{ index $ref 0 }}
      key: {{ index $ref 1 }}
{{- end }}
{{- end }}

{{- define "ehkp.secretDir" -}}
/run/secrets/eventhubs-kafka-python
{{- end }}

{{/*
"name key" of the Secret one service mounts as a file (secret.asFile), or nothing
when it reads none (Entra ID, or Kafka without SASL).
*/}}
{{- define "ehkp.secretFile" -}}
{{- $v := .root.Values }}
{{- $c := index $v .component }}
{{- $eventHubsKey := and (eq $v.broker "eventHubs") (ne $v.eventHubs.auth "entraId") }}
{{- $kafkaSasl := and (eq $v.broker "kafka") (hasPrefix "SASL_" $v.kafka.securityProtocol) }}
{{- if and $v.secret.asFile (or $eventHubsKey $kafkaSasl) }}
{{- include "ehkp.secretRef" (dict "root" .root "override" $c.secret) }}
{{- end }}
{{- end }}
