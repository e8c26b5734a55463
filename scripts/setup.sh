#!/usr/bin/env bash
# Installs what flannel-ts needs and builds it. Both README commands run this first; it is
# idempotent and quick when everything is present.
#   - Debian packages: etcd (server and client), the CNI plugins, iproute2, nftables, iptables,
#     iperf3, ping, and make, g++ and python3 for the addon, binutils' strip for the single
#     executables, podman, containerd, runc and busybox-static for pods as containers, debootstrap for the image; with --with-browser (npm test) also chromium, for the dashboard test.
#   - npm ci when node_modules does not match package-lock.json, then the build (the netlink
#     socket addon in native/ and the TypeScript) when a source is newer than the last build.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*" >&2; }

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have etcd || missing+=(etcd-server)
have etcdctl || missing+=(etcd-client)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || missing+=(containernetworking-plugins)
have ip || missing+=(iproute2)
have nft || missing+=(nftables)
have iptables || missing+=(iptables)
have iperf3 || missing+=(iperf3)
have ping || missing+=(iputils-ping)
# The wireguard backend: wireguard-go where the kernel has no WireGuard, wg to look at it, and
# tcpdump for the test that pod traffic is encrypted on the wire.
have wireguard-go || missing+=(wireguard-go)
have wg || missing+=(wireguard-tools)
have tcpdump || missing+=(tcpdump)
# The build compiles flannel-ts's addons (native/) with node-gyp.
have make || missing+=(make)
have g++ || missing+=(g++)
# The single executables are made from a stripped copy of Node (scripts/build_helpers.mjs).
have strip || missing+=(binutils)
have python3 || missing+=(python3)
# NetworkPolicy's probe agent in lab pods (lab/netpol_agent.py) runs on Debian's own python3.
[ -x /usr/bin/python3 ] || missing+=(python3)
# Pods as podman containers (lab --runtime podman), their image from busybox-static, and the .deb.
have podman || missing+=(podman)
have runc || missing+=(runc)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
# Pods as the kubelet makes them (lab --runtime containerd): containerd's CRI plugin, and ctr
# (in the same package) to import the sandbox image.
have containerd || missing+=(containerd)
# flannel-ts's image (npm run image) starts from a Debian root made with debootstrap.
have debootstrap || missing+=(debootstrap)
have nsenter || missing+=(util-linux)
# The dashboard test drives Debian's Chromium (never a browser downloaded by a test tool).
if [ "${1:-}" = "--with-browser" ]; then
  have chromium || missing+=(chromium)
fi
# The Kubernetes tests check the API double with the real kubectl, which these machines have
# preinstalled (Debian has no package for it): say so early when it is missing.
if [ "${1:-}" = "--with-browser" ] && ! have kubectl; then
  say "kubectl not found: the Kubernetes API double's fidelity tests need it on PATH"
fi
for extra in ${FLANNEL_TS_EXTRA_PACKAGES:-}; do
  dpkg -s "$extra" >/dev/null 2>&1 || missing+=("$extra")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing packages: ${missing[*]}; run this as root (apt-get needs it)"
    exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# flanneld (without nftables) needs br_netfilter, as flannel does; load it when it is missing.
if [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && [ "$(id -u)" = 0 ]; then
  modprobe br_netfilter 2>/dev/null || say "br_netfilter is not loaded and modprobe failed: flanneld in iptables mode will refuse to start"
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund >&2
  touch node_modules/.package-lock.json
fi

# Build when a source or the compiler config is newer than the last build.
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src lab test bench native binding.gyp scripts/bundle.mjs tsconfig.json package-lock.json -newer "$stamp" -print -quit 2>/dev/null)" ]; then
  say "building"
  npm run --silent build >&2
  touch "$stamp"
fi
