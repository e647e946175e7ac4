#!/usr/bin/env bash
# Build the local Kubernetes stack (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok, kwokctl, helm) from the Go module proxy into a cache
# outside the repository. Idempotent: a binary that is already in the cache is not rebuilt.
#
#   hack/build-k8s.sh            build what is missing, print what was built and how long it took
#   hack/build-k8s.sh --print    print the cache directory and exit
#
# Versions are pinned by the wrapper modules in tools/*/go.mod (go.sum committed).
set -euo pipefail

KVER=v1.35.4
KMAJ=1
KMIN=35
ETCD_VER=v3.6.16
KWOK_VER=v0.8.0
HELM_VER=v3.22.0

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE_ROOT=${GPU_PROVIDER_CACHE:-$HOME/.cache/gpu-provider}
OUT=$CACHE_ROOT/k8s-$KVER

if [[ "${1:-}" == "--print" ]]; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$OUT"
export GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod
# Two cores: more parallel compile jobs only add memory pressure.
export GOMAXPROCS=${GOMAXPROCS:-2}

log() { printf '[build-k8s] %s\n' "$*" >&2; }

built_any=0
build_step() {
  # build_step NAME CHECK-BINARY... -- COMMAND...
  local name=$1; shift
  local missing=0
  while [[ $1 != "--" ]]; do
    [[ -x "$OUT/$1" ]] || missing=1
    shift
  done
  shift
  if [[ $missing == 0 ]]; then
    log "$name: cached"
    return
  fi
  log "$name: building ..."
  local t0=$SECONDS
  "$@"
  log "$name: built in $((SECONDS - t0)) s"
  built_any=1
}

build_kube() {
  local ldf="-s -w"
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldf="$ldf -X $p.gitVersion=$KVER -X $p.gitMajor=$KMAJ -X $p.gitMinor=$KMIN"
    ldf="$ldf -X $p.gitTreeState=clean -X $p.gitCommit=0000000000000000000000000000000000000000"
    ldf="$ldf -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$ROOT/tools/k8s-bins" && go build -trimpath -tags selinux,notest,grpcnotrace \
    -ldflags "$ldf" -o "$OUT/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
}

build_etcd() {
  (cd "$ROOT/tools/etcd-bin" && go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  (cd "$ROOT/tools/kwok-bin" && go build -trimpath -ldflags "-s -w" -o "$OUT/" \
    sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl)
}

build_helm() {
  local ldf="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VER"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldf="$ldf -X $p.k8sVersionMajor=$KMAJ -X $p.k8sVersionMinor=$KMIN"
  done
  (cd "$ROOT/tools/helm-bin" && go build -trimpath -ldflags "$ldf" -o "$OUT/helm" helm.sh/helm/v3/cmd/helm)
}

T0=$SECONDS
# kwok is the one module a fresh machine might not get from the proxy; find out before
# spending ten minutes on the rest.
if [[ ! -x "$OUT/kwok" || ! -x "$OUT/kwokctl" ]]; then
  if ! (cd "$ROOT/tools/kwok-bin" && go list -m "sigs.k8s.io/kwok@$KWOK_VER" >/dev/null); then
    log "sigs.k8s.io/kwok $KWOK_VER is not served by the Go module proxy: cannot build the stack"
    exit 1
  fi
fi
# Smallest first, so a failure in the big build still leaves the rest usable.
build_step "etcd $ETCD_VER" etcd -- build_etcd
build_step "kwok $KWOK_VER" kwok kwokctl -- build_kwok
build_step "helm $HELM_VER" helm -- build_helm
build_step "kubernetes $KVER" kube-apiserver kube-controller-manager kube-scheduler kubectl -- build_kube

if [[ $built_any == 1 ]]; then
  log "total: $((SECONDS - T0)) s; binaries in $OUT:"
  (cd "$OUT" && ls -l etcd kwok kwokctl helm kube-apiserver kube-controller-manager kube-scheduler kubectl \
    | awk '{printf "[build-k8s]   %-26s %6.1f MiB\n", $9, $5/1048576}') >&2
fi
echo "$OUT"
