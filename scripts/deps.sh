#!/usr/bin/env bash
# Install the Debian packages the demo and the tests need (idempotent,
# non-interactive). tshark's setuid question is answered in advance.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "deps.sh: run as root (network namespaces, raw sockets)" >&2; exit 1; }
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v tshark >/dev/null || need+=(tshark)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v bridge >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "deps.sh: cargo (Rust toolchain) is required" >&2; exit 1; }
