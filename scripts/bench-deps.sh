#!/usr/bin/env bash
# Install what the Corosync CPG comparison benchmark needs (idempotent,
# non-interactive): corosync (3.1.x, knet transport), libcpg-dev (+ libqb-dev
# pulled in by it) for the benchmark's C client, gcc and pkg-config to build
# it. Run as root.
#
# The benchmark (tests/src/corosync.rs, `cargo run --release -p ha-tests --bin
# cpg-bench`) starts its own corosync daemons inside the lab's network and
# mount namespaces with private configuration; the system-wide corosync
# service must never run:
#   - while installing, a temporary /usr/sbin/policy-rc.d that exits 101
#     ("action forbidden") stops the maintainer scripts from starting
#     corosync.service (invoke-rc.d / deb-systemd-invoke consult it); an
#     existing policy-rc.d (e.g. Docker's "exit 101") is left as it is;
#   - afterwards, on a machine booted with systemd, corosync.service is
#     stopped, disabled and masked, so it does not start at the next boot
#     either. Without systemd (containers) nothing starts it.
# A corosync process already running in the root namespace is reported (not
# killed: it is not ours) because it would not collide with the lab's
# daemons anyway (those live in their own network and mount namespaces),
# but it means somebody else runs a cluster on this machine.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench-deps.sh: run as root" >&2; exit 1; }

pkgs=(corosync libcpg-dev libqb-dev gcc libc6-dev pkg-config)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  policy=/usr/sbin/policy-rc.d
  ours=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from bench-deps.sh: no service starts during install\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    ours=1
  fi
  cleanup() { if [ -n "$ours" ]; then rm -f "$policy"; fi; }
  trap cleanup EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -d /run/systemd/system ]; then
  # Booted with systemd: make sure the packaged service is off for good.
  systemctl stop corosync.service >/dev/null 2>&1 || true
  systemctl disable corosync.service >/dev/null 2>&1 || true
  systemctl mask corosync.service >/dev/null 2>&1 || true
fi
if pids=$(pgrep -x corosync 2>/dev/null); then
  for p in $pids; do
    if [ "$(readlink /proc/$p/ns/net)" = "$(readlink /proc/self/ns/net)" ]; then
      echo "bench-deps.sh: warning: a corosync (pid $p) runs in the root namespace; not ours, left alone" >&2
    fi
  done
fi
for c in corosync corosync-cmapctl gcc pkg-config; do
  command -v "$c" >/dev/null || { echo "bench-deps.sh: $c missing after install" >&2; exit 1; }
done
pkg-config --exists libcpg || { echo "bench-deps.sh: pkg-config cannot find libcpg" >&2; exit 1; }
