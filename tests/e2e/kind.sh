#!/usr/bin/env bash
# End-to-end test on a real Kubernetes cluster (kind). Not run by tests/run.sh: it needs Docker,
# kind, kubectl and helm, which the project's CI machines do not have. It is meant for a CI that
# has them (or a laptop):
#
#   bash tests/e2e/kind.sh            # KEEP_CLUSTER=1 leaves the cluster up afterwards
#
# Steps: build both images from the Dockerfile, load them into a fresh kind cluster, helm install
# the operator, apply a 3-node StorageCluster, add the demo NFT collection on one node, apply the
# collection's Pins (replicas 3), wait until each is "3/3 Pinned", read files back through the
# gateway Service, scale 3 -> 4 -> 3 and check no pin drops below 3/3, delete the Pins and check
# the cluster unpinned them. Every wait has a deadline and says what it waited for.
set -euo pipefail
cd "$(dirname "$0")/../.."

cluster=${KIND_CLUSTER:-distribute-e2e}
ns=e2e
tag=e2e-$(date +%s)
deadline=${E2E_TIMEOUT:-600}   # seconds per wait
work=$(mktemp -d)
pf_pid=""

for tool in docker kind kubectl helm curl python3; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool not found on PATH" >&2; exit 1; }
done

cleanup() {
  if [ -n "$pf_pid" ]; then kill "$pf_pid" 2>/dev/null || true; fi
  rm -rf "$work"
  if [ "${KEEP_CLUSTER:-0}" != 1 ]; then kind delete cluster --name "$cluster" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step() { echo "e2e: $*" >&2; }

# wait_for DESCRIPTION COMMAND...: runs COMMAND every 3 s until it succeeds or the deadline passes.
wait_for() {
  local what=$1; shift
  local until=$(( $(date +%s) + deadline ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$until" ]; then
      echo "e2e: timed out after ${deadline}s waiting for: $what" >&2
      kubectl -n "$ns" get storageclusters,pins,pods -o wide >&2 || true
      kubectl -n distribute-system logs deploy/distribute-operator --tail=50 >&2 || true
      exit 1
    fi
    sleep 3
  done
  step "ok: $what"
}

# node_cli POD ARGS...: the distribute CLI inside a node pod; it reaches the pod's daemon
# through its API with the token the operator mounts.
node_cli() {
  local pod=$1; shift
  kubectl -n "$ns" exec "$pod" -- distribute --api-token-file=/var/run/distribute/api/token "$@"
}

pin_is() { # pin_is NAME REPLICAS PHASE
  [ "$(kubectl -n "$ns" get pin "$1" -o jsonpath='{.status.replicas} {.status.phase}')" = "$2 $3" ]
}

step "building images (tag $tag)"
docker build --target node -t "distribute:$tag" .
docker build --target operator -t "distribute-operator:$tag" .

step "creating kind cluster $cluster"
kind create cluster --name "$cluster" --wait 120s
kind load docker-image --name "$cluster" "distribute:$tag" "distribute-operator:$tag"

step "installing the chart"
helm install distribute helm/distribute --namespace distribute-system --create-namespace \
  --set image.repository=distribute-operator --set image.tag="$tag" \
  --set image.pullPolicy=Never --wait --timeout 5m
kubectl get crd storageclusters.distribute.io pins.distribute.io

step "applying a 3-node StorageCluster"
kubectl create namespace "$ns"
sed -e "s|image: ghcr.io/distribute/distribute:.*|image: distribute:$tag|" \
    -e "s|imagePullPolicy: IfNotPresent|imagePullPolicy: Never|" \
    -e "s|size: 10Gi|size: 1Gi|" \
    k8s/examples/storagecluster.yaml | kubectl -n "$ns" apply -f -
ready_3() { [ "$(kubectl -n "$ns" get storagecluster demo -o jsonpath='{.status.readyReplicas}')" = 3 ]; }
wait_for "StorageCluster demo has 3 ready replicas" ready_3

# Added without a local pin: only the cluster's pins (the Pin objects) keep it.
step "adding the demo NFT collection on demo-0"
python3 tests/e2e/make-nft-collection.py "$work/c" -
kubectl -n "$ns" cp "$work/c/images" demo-0:/data/e2e-images
images=$(node_cli demo-0 add -Q -r --cid-version 1 --pin=false /data/e2e-images)
python3 tests/e2e/make-nft-collection.py "$work/c" "$images"
kubectl -n "$ns" cp "$work/c/metadata" demo-0:/data/e2e-metadata
kubectl -n "$ns" cp "$work/c/contract.json" demo-0:/data/e2e-contract.json
metadata=$(node_cli demo-0 add -Q -r --cid-version 1 --pin=false /data/e2e-metadata)
contract=$(node_cli demo-0 add -Q --cid-version 1 --pin=false /data/e2e-contract.json)
for cid in "$images" "$metadata" "$contract"; do
  grep -q "$cid" k8s/examples/nft-collection.yaml \
    || { echo "e2e: CID $cid is not the one k8s/examples/nft-collection.yaml pins" >&2; exit 1; }
done

step "pinning the collection with replicas 3"
kubectl -n "$ns" apply -f k8s/examples/nft-collection.yaml
for pin in lighthouses-images lighthouses-metadata lighthouses-contract; do
  wait_for "Pin $pin is 3/3 Pinned" pin_is "$pin" 3/3 Pinned
done

step "reading contract.json back through the gateway Service"
kubectl -n "$ns" port-forward svc/demo-gateway 18080:8080 >/dev/null 2>&1 &
pf_pid=$!
gateway_serves() { curl -fsS "http://127.0.0.1:18080/ipfs/$contract" -o "$work/got.json"; }
wait_for "the gateway serves /ipfs/$contract" gateway_serves
cmp "$work/got.json" "$work/c/contract.json"
curl -fsS "http://127.0.0.1:18080/ipfs/$metadata/1.json" | grep -q "ipfs://$images/1.png"

step "scaling 3 -> 4 -> 3; pins must stay at 3/3"
kubectl -n "$ns" patch storagecluster demo --type merge -p '{"spec":{"replicas":4}}'
ready_4() { [ "$(kubectl -n "$ns" get storagecluster demo -o jsonpath='{.status.readyReplicas}')" = 4 ]; }
wait_for "StorageCluster demo has 4 ready replicas" ready_4
kubectl -n "$ns" patch storagecluster demo --type merge -p '{"spec":{"replicas":3}}'
scaled_in() { [ "$(kubectl -n "$ns" get statefulset demo -o jsonpath='{.status.replicas}')" = 3 ] && ready_3; }
wait_for "StorageCluster demo drained and back to 3 replicas" scaled_in
for pin in lighthouses-images lighthouses-metadata lighthouses-contract; do
  wait_for "Pin $pin is 3/3 Pinned after the scale-in" pin_is "$pin" 3/3 Pinned
done

step "deleting the Pins"
kubectl -n "$ns" delete -f k8s/examples/nft-collection.yaml --wait --timeout 5m
unpinned() {
  for pod in demo-0 demo-1 demo-2; do
    if node_cli "$pod" pin ls | grep -q "$contract"; then return 1; fi
  done
}
wait_for "contract.json is pinned on no node" unpinned

step "passed"
