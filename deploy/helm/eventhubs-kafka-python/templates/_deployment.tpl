{{/* One service's Deployment: ehkp.deployment (dict "root" $ "component" "consumer") */}}
{{- define "ehkp.deployment" -}}
{{- $v := .root.Values }}
{{- $c := index $v .component }}
{{- $scope := dict "root" .root "component" .component }}
{{- $entra := and (eq $v.broker "eventHubs") (eq $v.eventHubs.auth "entraId") }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "ehkp.component" $scope }}
  labels:
    {{- include "ehkp.labels" $scope | nindent 4 }}
spec:
  {{- if not (and (eq .component "consumer") $v.autoscaling.enabled) }}
  replicas: {{ $c.replicas }}
  {{- end }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- include "ehkp.selectorLabels" $scope | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "ehkp.selectorLabels" $scope | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- if $entra }}
        azure.workload.identity/use: "true"
        {{- end }}
      {{- $annotations := deepCopy $v.podAnnotations }}
      {{- if and $v.secret.value (not $v.secret.name) }}
      {{- /* A new value restarts the pods, which read it once at start. */}}
      {{- $_ := set $annotations "checksum/secret" ($v.secret.value | sha256sum) }}
      {{- end }}
      {{- with $annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "ehkp.serviceAccountName" $scope }}
      {{- /* The services call no Kubernetes API; only workload identity needs the token. */}}
      automountServiceAccountToken: false
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      {{- if ne .component "producer" }}
      # Consumers on different nodes: losing one node moves few partitions.
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "ehkp.selectorLabels" $scope | nindent 14 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "ehkp.image" $scope | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          {{- /* The sink is the consumer with the example's handler. */}}
          args: [{{ ternary "consumer" .component (eq .component "sink") | quote }}]
          env:
            {{- include "ehkp.env" $scope | trim | nindent 12 }}
          ports:
            - name: metrics
              containerPort: {{ $v.metricsPort }}
              protocol: TCP
          # /healthz fails only when the loop itself is stuck, never while a
          # broker is away: a restart would not bring the broker back.
          livenessProbe:
            httpGet:
              path: /healthz
              port: metrics
            initialDelaySeconds: 10
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          # /readyz: the producer's topic is known and its last send succeeded,
          # or the consumer is a member of its group.
          readinessProbe:
            httpGet:
              path: /readyz
              port: metrics
            periodSeconds: 5
            timeoutSeconds: 5
            failureThreshold: 3
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          securityContext:
            {{- toYaml $v.securityContext | nindent 12 }}
          {{- $secretFile := include "ehkp.secretFile" $scope }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $secretFile }}
            - name: secret
              mountPath: {{ include "ehkp.secretDir" .root }}
              readOnly: true
            {{- end }}
            {{- if and (eq .component "sink") $v.secret.asFile }}
            - name: database
              mountPath: {{ include "ehkp.databaseDir" .root }}
              readOnly: true
            {{- end }}
      volumes:
        # The root filesystem is read-only; Python and its libraries may still
        # want a scratch directory.
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if $secretFile }}
        {{- $ref := splitList " " $secretFile }}
        # The one key, readable by the pod's group (fsGroup) and no one else.
        - name: secret
          secret:
            secretName: {{ index $ref 0 }}
            defaultMode: 0440
            items:
              - key: {{ index $ref 1 }}
                path: {{ index $ref 1 }}
        {{- end }}
        {{- if and (eq .component "sink") $v.secret.asFile }}
        {{- $database := include "ehkp.databaseRef" .root | splitList " " }}
        # The database's URL, readable by the pod's group only.
        - name: database
          secret:
            secretName: {{ index $database 0 }}
            defaultMode: 0440
            items:
              - key: {{ index $database 1 }}
                path: {{ index $database 1 }}
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
