#!/usr/bin/env bash
# Installs the Helm engine the chart tests use: the helm-python-sdk wheel from PyPI, which bundles
# Helm v4 compiled as a C library (libhelm_c.so) with offline lint and template rendering.
# Needs python3 with pip (installed with apt-get when missing and running as root) and access to
# PyPI. The wheel is checked against a pinned SHA-256 and unpacked outside the clone, in
# $DISTRIBUTE_HELM_SDK (default ~/.cache/distribute-helm/helm-python-sdk-<version>).
# Idempotent: does nothing when that folder is complete. Prints the folder on the last line.
set -euo pipefail
version=0.2.2
sha256=28cc13abaf134c3a7e37f070c939be8d9cdc9825c3c8b8b2d35161073bcd4578
wheel="helm_python_sdk-${version}-py3-none-manylinux_2_28_x86_64.whl"
dest="${DISTRIBUTE_HELM_SDK:-$HOME/.cache/distribute-helm/helm-python-sdk-$version}"
stamp="$dest/.distribute-install-stamp"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sha256" ]; then
  echo "$dest"
  exit 0
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "helm install.sh: the pinned wheel is for Linux x86_64, this is $(uname -s)-$(uname -m)" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "helm install.sh: python3 not found" >&2; exit 1; }
if ! python3 -m pip --version >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null
  else
    echo "helm install.sh: python3 has no pip; install python3-pip" >&2
    exit 1
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary :all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 \
  --dest "$tmp" "helm-python-sdk==$version" >&2
got=$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
  echo "helm install.sh: $wheel has SHA-256 $got, expected $sha256" >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
python3 -m zipfile -e "$tmp/$wheel" "$dest"
echo "$sha256" > "$stamp"
echo "helm install.sh: helm-python-sdk $version unpacked in $dest" >&2
echo "$dest"
