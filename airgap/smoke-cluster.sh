#!/usr/bin/env bash
# Smoke test of the offline-built images: a 3-node kind cluster (1 control-plane + 2 workers, API server on
# 127.0.0.1) from the local node image; all nodes Ready and coredns, kindnet, local-path-provisioner Running;
# a component image (committed with an extra label, so that the nodes do not hold it yet) loaded with `kind load docker-image` runs with imagePullPolicy: Never (a Traefik server on
# one worker, probed through its Service from a pod on the other worker: DNS, Service routing and the cross-node
# pod network; then a pod writing to a PVC of the default StorageClass); no node ever asked containerd to pull
# an image; then the cluster is deleted.
# Needs: build-binaries.sh and build-images.sh done (kind, kubectl and the images come from the cache).
# Env: AIRGAP_CLUSTER_NAME (default e2e-smoke), AIRGAP_KEEP_CLUSTER=1 keeps the cluster (and prints how to use it),
#      AIRGAP_SMOKE_IMAGE (default the Traefik image; the checks use Traefik commands), AIRGAP_WAIT (default 300s per wait).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd docker

CLUSTER=${AIRGAP_CLUSTER_NAME:-e2e-smoke}
SOURCE_IMAGE=${AIRGAP_SMOKE_IMAGE:-$TRAEFIK_IMAGE}
# The node image already holds the platform's images: `kind load` gets an image of its own (see load_image).
SMOKE_IMAGE=localhost/e2e-smoke/${SOURCE_IMAGE##*/}
WAIT=${AIRGAP_WAIT:-300s}
KIND=$(bin_dir kind "$KIND_VERSION")/kind
KUBECTL_BIN=$(bin_dir kubernetes "$K8S_VERSION")/kubectl
KUBECONFIG_FILE=$AIRGAP_WORK_DIR/$CLUSTER.kubeconfig
[[ -x $KIND && -x $KUBECTL_BIN ]] || die "kind/kubectl not built: run airgap/build-binaries.sh"
docker image inspect "$NODE_IMAGE" >/dev/null 2>&1 || die "$NODE_IMAGE missing: run airgap/build-images.sh"
docker image inspect "$SOURCE_IMAGE" >/dev/null 2>&1 || die "$SOURCE_IMAGE missing: run airgap/build-images.sh"
kubectl() { "$KUBECTL_BIN" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

"$AIRGAP_DIR/host/prepare-host.sh"

nodes() { "$KIND" get nodes --name "$CLUSTER" 2>/dev/null; }

debug_dump() {
  log "cluster state for debugging:"
  kubectl get nodes -o wide >&2 || true
  kubectl get pods -A -o wide >&2 || true
  kubectl get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -n 40 >&2 || true
  local n
  for n in $(nodes); do
    log "--- $n: kubelet errors and containerd errors (last lines)"
    docker exec "$n" journalctl -u kubelet --no-pager 2>/dev/null | grep -E 'kubelet\[[0-9]+\]: E' | tail -n 15 >&2 || true
    docker exec "$n" journalctl -u containerd --no-pager 2>/dev/null | grep 'level=error' | tail -n 10 >&2 || true
  done
}

cleanup() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then debug_dump; fi
  if [[ ${AIRGAP_KEEP_CLUSTER:-0} == 1 ]]; then
    log "keeping cluster $CLUSTER: export KUBECONFIG=$KUBECONFIG_FILE; delete with: $KIND delete cluster --name $CLUSTER"
  else
    "$KIND" delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE" >/dev/null 2>&1 || true
    rm -f "$KUBECONFIG_FILE"
  fi
  docker image rm "$SMOKE_IMAGE" >/dev/null 2>&1 || true
  exit "$rc"
}

create_cluster() {
  "$KIND" delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE" >/dev/null 2>&1 || true
  # --retain: on failure the nodes stay for debug_dump; cleanup deletes them.
  "$KIND" create cluster --retain --name "$CLUSTER" --image "$NODE_IMAGE" --kubeconfig "$KUBECONFIG_FILE" --config - <<'YAML'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  apiServerAddress: 127.0.0.1
nodes:
  - role: control-plane
  - role: worker
  - role: worker
YAML
  grep -q 'server: https://127.0.0.1:' "$KUBECONFIG_FILE" || die "API server is not published on 127.0.0.1"
}

wait_ready() {
  kubectl wait --for=condition=Ready node --all --timeout="$WAIT"
  [[ $(kubectl get nodes --no-headers | wc -l) -eq 3 ]] || die "expected 3 nodes"
  kubectl -n kube-system rollout status deployment/coredns --timeout="$WAIT"
  kubectl -n kube-system rollout status daemonset/kindnet --timeout="$WAIT"
  kubectl -n kube-system rollout status daemonset/kube-proxy --timeout="$WAIT"
  kubectl -n kube-system rollout status daemonset/network-policy --timeout="$WAIT"
  kubectl -n local-path-storage rollout status deployment/local-path-provisioner --timeout="$WAIT"
  kubectl get nodes -o wide
  kubectl get pods -A -o wide
}

load_image() {
  # A new image ID (the component image plus a label), else kind would only re-tag what the nodes hold.
  local cid
  cid=$(docker create "$SOURCE_IMAGE")
  docker commit --change "LABEL io.sentiment-platform.e2e.smoke=$CLUSTER" "$cid" "$SMOKE_IMAGE" >/dev/null
  docker rm "$cid" >/dev/null
  "$KIND" load docker-image "$SMOKE_IMAGE" --name "$CLUSTER"
}

# wait_pod_done POD: wait until the pod has Succeeded (return 0) or Failed (return 1).
wait_pod_done() {
  local phase deadline=$((SECONDS + ${WAIT%s}))
  while ((SECONDS < deadline)); do
    phase=$(kubectl get pod "$1" -o jsonpath='{.status.phase}')
    case $phase in
      Succeeded) return 0 ;;
      Failed) return 1 ;;
    esac
    sleep 2
  done
  return 1
}

run_smoke_pods() {
  # Server on one worker, client on the other: the client resolves the Service through CoreDNS (on the
  # control-plane node), kube-proxy routes it, kindnetd's routes carry it across nodes.
  # The client is Traefik's own `healthcheck` command pointed at the server's ping entry point.
  local w1=$CLUSTER-worker w2=$CLUSTER-worker2 out
  kubectl apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: smoke-server
  labels: {app: smoke-server}
spec:
  nodeSelector: {kubernetes.io/hostname: $w1}
  containers:
    - name: traefik
      image: $SMOKE_IMAGE
      imagePullPolicy: Never
      args: ["--ping=true", "--entryPoints.traefik.address=:8080", "--log.level=INFO"]
      ports: [{containerPort: 8080}]
      readinessProbe:
        httpGet: {path: /ping, port: 8080}
        periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata:
  name: smoke-server
spec:
  selector: {app: smoke-server}
  ports: [{port: 8080, targetPort: 8080}]
YAML
  kubectl wait --for=condition=Ready pod/smoke-server --timeout="$WAIT"
  # kube-proxy on the client's node programs the Service a moment after the endpoint turns ready:
  # until then the ClusterIP refuses connections, hence restartPolicy OnFailure for the client.
  kubectl apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: smoke-client
spec:
  nodeSelector: {kubernetes.io/hostname: $w2}
  restartPolicy: OnFailure
  containers:
    - name: client
      image: $SMOKE_IMAGE
      imagePullPolicy: Never
      args: ["healthcheck", "--ping", "--entryPoints.traefik.address=smoke-server.default.svc.cluster.local:8080"]
YAML
  wait_pod_done smoke-client || { kubectl logs smoke-client >&2 || true; die "smoke-client did not succeed"; }
  out=$(kubectl logs smoke-client)
  printf '%s\n' "$out"
  log "smoke-client restarts before success: $(kubectl get pod smoke-client -o jsonpath='{.status.containerStatuses[0].restartCount}')"
  grep -q '^OK: http://smoke-server.default.svc.cluster.local:8080/ping' <<<"$out" || die "unexpected client output"
  kubectl get pods -o wide
  kubectl logs smoke-server | tail -n 3
}

check_storage() {
  # A PVC of kind's default StorageClass, bound when a pod uses it: local-path-provisioner runs its
  # helper image on the pod's node to create the volume directory.
  kubectl apply -f - <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: smoke-pvc
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: smoke-storage
spec:
  restartPolicy: Never
  containers:
    - name: writer
      image: $SMOKE_IMAGE
      imagePullPolicy: Never
      command: ["sh", "-c", "echo stored > /data/probe && cat /data/probe"]
      volumeMounts: [{name: data, mountPath: /data}]
  volumes:
    - name: data
      persistentVolumeClaim: {claimName: smoke-pvc}
YAML
  wait_pod_done smoke-storage || { kubectl describe pvc smoke-pvc >&2 || true; die "smoke-storage did not succeed"; }
  [[ $(kubectl logs smoke-storage) == stored ]] || die "unexpected smoke-storage output"
  kubectl get pvc smoke-pvc
}

check_no_pulls() {
  local n count total=0
  for n in $(nodes); do
    count=$(docker exec "$n" journalctl -u containerd --no-pager | grep -c 'PullImage' || true)
    log "$n: containerd PullImage requests: $count"
    total=$((total + count))
  done
  [[ $total -eq 0 ]] || die "some node tried to pull an image (nothing may come from a registry)"
}

trap cleanup EXIT
stage "smoke:create-cluster" create_cluster
stage "smoke:wait-ready" wait_ready
stage "smoke:kind-load" load_image
stage "smoke:pods" run_smoke_pods
stage "smoke:storage" check_storage
stage "smoke:no-pulls" check_no_pulls
log "smoke test passed"
