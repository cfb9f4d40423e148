{{/*
eventstream.name
  In:  the root context.
  Out: the chart name, or .Values.nameOverride; at most 63 characters.
*/}}
{{- define "eventstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
eventstream.fullname
  In:  the root context.
  Out: the prefix of every resource name: .Values.fullnameOverride, else the
       release name when it already contains the chart name (release
       "eventstream" gives "eventstream"), else "<release>-<name>". At most 52
       characters, so "<fullname>-headless" and the pods' "<fullname>-<n>"
       plus the StatefulSet's revision label stay within 63.
*/}}
{{- define "eventstream.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
eventstream.headlessName
  In:  the root context.
  Out: name of the headless Service that governs the StatefulSet
       ("<fullname>-headless"); peers resolve "<pod>.<this>" to each other.
*/}}
{{- define "eventstream.headlessName" -}}
{{- printf "%s-headless" (include "eventstream.fullname" .) }}
{{- end }}

{{/*
eventstream.configMapName
  In:  the root context.
  Out: name of the ConfigMap holding config.yaml ("<fullname>-config").
*/}}
{{- define "eventstream.configMapName" -}}
{{- printf "%s-config" (include "eventstream.fullname" .) }}
{{- end }}

{{/*
eventstream.serviceAccountName
  In:  the root context.
  Out: the ServiceAccount the pods run as: .Values.serviceAccount.name, else
       the full name when the chart creates one, else "default".
*/}}
{{- define "eventstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "eventstream.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
eventstream.chart
  In:  the root context.
  Out: "<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "eventstream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
eventstream.selectorLabels
  In:  the root context.
  Out: the labels that select this release's pods. They are immutable in a
       StatefulSet's selector: never add to them.
*/}}
{{- define "eventstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
eventstream.labels
  In:  the root context.
  Out: the labels of every resource: the selector labels plus chart, version
       and manager.
*/}}
{{- define "eventstream.labels" -}}
helm.sh/chart: {{ include "eventstream.chart" . }}
{{ include "eventstream.selectorLabels" . }}
app.kubernetes.io/version: {{ include "eventstream.imageTag" . | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: eventstream
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
eventstream.imageTag
  In:  the root context.
  Out: .Values.image.tag, else the chart's appVersion.
*/}}
{{- define "eventstream.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
eventstream.image
  In:  the root context.
  Out: "<repository>:<tag>" of the server image.
*/}}
{{- define "eventstream.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "eventstream.imageTag" .) }}
{{- end }}

{{/*
eventstream.dataDir
  Out: the data directory inside the container; the image's VOLUME and the
       server's storage.data_dir.
*/}}
{{- define "eventstream.dataDir" -}}
/var/lib/eventstream
{{- end }}

{{/*
eventstream.configDir
  Out: where the ConfigMap is mounted; the image's entrypoint reads
       <this>/config.yaml.
*/}}
{{- define "eventstream.configDir" -}}
/etc/eventstream
{{- end }}

{{/*
eventstream.secretsDir
  Out: where the TLS and token Secrets are mounted (tls/, peer-tls/, auth/).
*/}}
{{- define "eventstream.secretsDir" -}}
/var/run/secrets/eventstream
{{- end }}

{{/*
eventstream.headlessHost
  In:  the root context.
  Out: the headless Service's DNS name, <service>.<namespace>.svc[.<domain>]:
       the name the members' certificate carries and every member checks
       (cluster.tls.server_name).
*/}}
{{- define "eventstream.headlessHost" -}}
{{- printf "%s.%s.svc" (include "eventstream.headlessName" .) .Release.Namespace }}
{{- with .Values.cluster.clusterDomain }}.{{ . }}{{ end }}
{{- end }}

{{/*
eventstream.voters
  In:  the root context.
  Out: the voters of the Raft cluster: .Values.cluster.voters, or 1 for a
       single unreplicated node (cluster.enabled false).
*/}}
{{- define "eventstream.voters" -}}
{{- if .Values.cluster.enabled }}{{ int .Values.cluster.voters }}{{ else }}1{{ end }}
{{- end }}

{{/*
eventstream.pods
  In:  the root context.
  Out: the pods the release starts with: .Values.replicas, or
       autoscaling.minReplicas when the autoscaler owns the count.
*/}}
{{- define "eventstream.pods" -}}
{{- if .Values.autoscaling.enabled }}{{ int .Values.autoscaling.minReplicas }}{{ else }}{{ int .Values.replicas }}{{ end }}
{{- end }}

{{/*
eventstream.majority
  In:  the root context.
  Out: the voters that make a quorum (voters / 2 + 1).
*/}}
{{- define "eventstream.majority" -}}
{{- add (div (include "eventstream.voters" . | int) 2) 1 }}
{{- end }}

{{/*
eventstream.checkCluster
  In:  the root context.
  Out: nothing; fails the render for what a replicated StatefulSet cannot do:
       the removed independentNodes opt-in, more than one pod without
       cluster.enabled, fewer pods than voters, an even number of voters not
       explicitly allowed, and an autoscaler that could remove a voter.
*/}}
{{- define "eventstream.checkCluster" -}}
{{- if hasKey .Values "independentNodes" }}
{{- fail "independentNodes was removed: the pods now form one replicated cluster (cluster.enabled, cluster.voters voters), so there are no independent nodes to opt in to. Delete the key; for one unreplicated node set replicas: 1 and cluster.enabled: false." }}
{{- end }}
{{- $voters := int .Values.cluster.voters }}
{{- $pods := include "eventstream.pods" . | int }}
{{- if and (gt $pods 1) (not .Values.cluster.enabled) }}
{{- fail (printf "replicas: %d needs cluster.enabled: true. Without it every pod would be an unrelated single node with its own log behind one Service." $pods) }}
{{- end }}
{{- if .Values.cluster.enabled }}
{{- if and (eq (mod $voters 2) 0) (not .Values.cluster.allowEvenVoters) }}
{{- $majority := add (div $voters 2) 1 }}
{{- fail (printf "cluster.voters: %d is even: a majority of it is %d, so it survives %d voter(s) down, no more than %d voters would, and every write waits for one more. Use an odd number (3 or 5), or set cluster.allowEvenVoters: true." $voters $majority (sub $voters $majority) (sub $voters 1)) }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- if lt (int .Values.autoscaling.minReplicas) $voters }}
{{- fail (printf "autoscaling.minReplicas: %d is below cluster.voters: %d. The autoscaler would remove voters (the highest ordinals go first), and a scale-in below a majority stops all writes. Set minReplicas to at least %d: it scales the read replicas beyond the voters." (int .Values.autoscaling.minReplicas) $voters $voters) }}
{{- end }}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) }}
{{- fail (printf "autoscaling.maxReplicas: %d is below autoscaling.minReplicas: %d" (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- end }}
{{- else if lt $pods $voters }}
{{- fail (printf "replicas: %d is below cluster.voters: %d. The pods of ordinals 0 to %d are the voters: the StatefulSet must run every one of them (more pods are read replicas). To run fewer voters, install a new release with a smaller cluster.voters; voters are fixed once the cluster has formed." $pods $voters (sub $voters 1)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
eventstream.staticPeers
  In:  the root context.
  Out: a YAML list of "host:port" of every voter, by ordinal, through the
       headless Service (used by cluster.discovery: static); read replicas
       find the voters there and join.
*/}}
{{- define "eventstream.staticPeers" -}}
{{- $fullname := include "eventstream.fullname" . }}
{{- $headless := include "eventstream.headlessName" . }}
{{- range $ordinal := until (include "eventstream.voters" . | int) }}
- {{ printf "%s-%d.%s.%s.svc.%s:%d" $fullname $ordinal $headless $.Release.Namespace $.Values.cluster.clusterDomain (int $.Values.ports.cluster) }}
{{- end }}
{{- end }}

{{/*
eventstream.config
  In:  the root context.
  Out: the server's config.yaml. The pass-through .Values.config comes first;
       the keys the chart owns (listeners, data directory, cluster, metrics,
       numa) are then set from the other values, so the pod spec, the probes
       and the server cannot disagree.
*/}}
{{- define "eventstream.config" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- $server := dict "host" "0.0.0.0" "grpc_port" (int .Values.ports.grpc) "tcp_port" (int .Values.ports.tcp) "udp_port" (int .Values.ports.udp) }}
{{- $cluster := dict "enabled" .Values.cluster.enabled "discovery" .Values.cluster.discovery "namespace" .Release.Namespace "service" (include "eventstream.headlessName" .) "port" (int .Values.ports.cluster) "replicas" (include "eventstream.voters" . | int) "voters" (include "eventstream.voters" . | int) "cluster_domain" .Values.cluster.clusterDomain }}
{{- if eq .Values.cluster.discovery "static" }}
{{- $_ := set $cluster "peers" (include "eventstream.staticPeers" . | fromYamlArray) }}
{{- end }}
{{- $secrets := include "eventstream.secretsDir" . }}
{{- if .Values.tls.peerSecretName }}
{{- $_ := set $cluster "tls" (dict "cert_file" (printf "%s/peer-tls/tls.crt" $secrets) "key_file" (printf "%s/peer-tls/tls.key" $secrets) "ca_file" (printf "%s/peer-tls/ca.crt" $secrets) "server_name" (include "eventstream.headlessHost" .)) }}
{{- end }}
{{- $owned := dict
      "server" $server
      "cluster" $cluster
      "metrics" (dict "enabled" .Values.metrics.enabled "port" (int .Values.ports.metrics) "path" .Values.metrics.path)
      "storage" (dict "data_dir" (include "eventstream.dataDir" .))
      "numa" (dict "enabled" .Values.numa.enabled) }}
{{- if .Values.tls.secretName }}
{{- $tls := dict "enabled" true "cert_file" (printf "%s/tls/tls.crt" $secrets) "key_file" (printf "%s/tls/tls.key" $secrets) }}
{{- if eq (dig "tls" "client_auth" "none" $config) "require" }}
{{- $_ := set $tls "client_ca_file" (printf "%s/tls/ca.crt" $secrets) }}
{{- end }}
{{- $_ := set $owned "tls" $tls }}
{{- end }}
{{- if .Values.tls.tokensSecretName }}
{{- $_ := set $owned "auth" (dict "tokens_file" (printf "%s/auth/tokens" $secrets)) }}
{{- end }}
{{- $merged := mustMergeOverwrite $config $owned }}
{{- toYaml $merged }}
{{- end }}

{{/*
eventstream.drainSeconds
  In:  the root context.
  Out: drain_grace_seconds + drain_timeout_seconds of the rendered config (the
       server's defaults, 0 and 20, when they are not set) + 2 (the bound of a
       member's leadership hand-over, which comes before the grace), rounded up.
*/}}
{{- define "eventstream.drainSeconds" -}}
{{- $server := (.Values.config | default dict).server | default dict }}
{{- $grace := $server.drain_grace_seconds | default 0 | float64 }}
{{- $timeout := hasKey $server "drain_timeout_seconds" | ternary $server.drain_timeout_seconds 20 | float64 }}
{{- addf $grace $timeout 2 | ceil | int }}
{{- end }}

{{/*
eventstream.podAntiAffinity
  In:  the root context.
  Out: the podAntiAffinity block for .Values.affinity.podAntiAffinity
       ("hard": required, "soft": preferred), or nothing for "none".
*/}}
{{- define "eventstream.podAntiAffinity" -}}
{{- $term := dict "labelSelector" (dict "matchLabels" (include "eventstream.selectorLabels" . | fromYaml)) "topologyKey" .Values.affinity.topologyKey }}
{{- if eq .Values.affinity.podAntiAffinity "hard" }}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    {{- list $term | toYaml | nindent 4 }}
{{- else if eq .Values.affinity.podAntiAffinity "soft" }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        {{- toYaml $term | nindent 8 }}
{{- end }}
{{- end }}

{{/*
eventstream.quantityBytes
  In:  a Kubernetes quantity string of the form the schema allows for sizes
       (an integer and an optional suffix: 10Gi, 500G, 1024Mi).
  Out: its value in bytes, as a float64 string, so "1Gi" and "1024Mi" (the
       API server stores quantities in canonical form) compare equal.
*/}}
{{- define "eventstream.quantityBytes" -}}
{{- $units := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18
      "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0
      "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- $number := regexFind "^[0-9]+" . }}
{{- $suffix := trimPrefix $number . }}
{{- mulf (float64 $number) (get $units $suffix) }}
{{- end }}

{{/*
eventstream.checkClaimTemplate
  In:  the root context.
  Out: nothing; on `helm upgrade`, fails the render when the claim template
       would differ from the live StatefulSet's. The API server forbids any
       change to volumeClaimTemplates and says so only in terms of fields; this
       names the value and the way out. `helm template` sees no live object.
*/}}
{{- define "eventstream.checkClaimTemplate" -}}
{{- $live := lookup "apps/v1" "StatefulSet" .Release.Namespace (include "eventstream.fullname" .) }}
{{- if $live }}
{{- $liveClaim := dict }}
{{- range ($live.spec.volumeClaimTemplates | default list) }}
{{- if eq .metadata.name "data" }}{{ $liveClaim = . }}{{ end }}
{{- end }}
{{- $how := "A StatefulSet's volumeClaimTemplates cannot be changed: keep the installed value, or grow each claim with kubectl (when its StorageClass allows expansion) and recreate the StatefulSet with kubectl delete statefulset --cascade=orphan before upgrading (deploy/README.md, Resizing the claims)." }}
{{- if ne .Values.persistence.enabled (not (empty $liveClaim)) }}
{{- fail (printf "persistence.enabled cannot change from %t to %t on an installed release. %s" (not (empty $liveClaim)) .Values.persistence.enabled $how) }}
{{- end }}
{{- if $liveClaim }}
{{- $liveSize := $liveClaim.spec.resources.requests.storage | toString }}
{{- if ne (include "eventstream.quantityBytes" $liveSize) (include "eventstream.quantityBytes" (toString .Values.persistence.size)) }}
{{- fail (printf "persistence.size cannot change from %s to %s on an installed release. %s" $liveSize .Values.persistence.size $how) }}
{{- end }}
{{- $liveClass := $liveClaim.spec.storageClassName | default "" }}
{{- if ne $liveClass .Values.persistence.storageClass }}
{{- fail (printf "persistence.storageClass cannot change from %q to %q on an installed release. %s" $liveClass .Values.persistence.storageClass $how) }}
{{- end }}
{{- if ne (toJson $liveClaim.spec.accessModes) (toJson .Values.persistence.accessModes) }}
{{- fail (printf "persistence.accessModes cannot change from %s to %s on an installed release. %s" (toJson $liveClaim.spec.accessModes) (toJson .Values.persistence.accessModes) $how) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
eventstream.checkPorts
  In:  the root context.
  Out: nothing; fails the render when two TCP ports of .Values.ports are the
       same: the API server refuses duplicate container and Service ports, and
       the server could not bind both. The UDP port may equal a TCP one.
*/}}
{{- define "eventstream.checkPorts" -}}
{{- $seen := dict }}
{{- range $name := list "tcp" "grpc" "cluster" "metrics" }}
{{- $port := get $.Values.ports $name | int | toString }}
{{- if hasKey $seen $port }}
{{- fail (printf "ports.%s and ports.%s are both %s: every TCP port (tcp, grpc, cluster, metrics) must differ" (get $seen $port) $name $port) }}
{{- end }}
{{- $_ := set $seen $port $name }}
{{- end }}
{{- end }}

{{/*
eventstream.checkPodLabels
  In:  the root context.
  Out: nothing; fails the render when .Values.podLabels sets a label the
       chart sets on the pods itself. Overriding a selector label would detach
       the pods from the StatefulSet (the API server refuses a selector that
       does not match the template); the others would silently lie.
*/}}
{{- define "eventstream.checkPodLabels" -}}
{{- $own := include "eventstream.labels" . | fromYaml }}
{{- range $key, $_ := .Values.podLabels }}
{{- if hasKey $own $key }}
{{- fail (printf "podLabels.%s is set by the chart itself (its pods' own labels: %s); pick another key" $key (keys $own | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
eventstream.secretVolumes
  In:  the root context.
  Out: YAML map of volume name (its directory under eventstream.secretsDir)
       -> Secret name, for the Secrets the tls values name.
*/}}
{{- define "eventstream.secretVolumes" -}}
{{- with .Values.tls.secretName }}
tls: {{ . }}
{{- end }}
{{- with .Values.tls.peerSecretName }}
peer-tls: {{ . }}
{{- end }}
{{- with .Values.tls.tokensSecretName }}
auth: {{ . }}
{{- end }}
{{- end }}
