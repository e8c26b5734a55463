#!/usr/bin/env bash
# npm run lab: set up what is missing, then a flannel cluster on this machine: etcd, three hosts
# running flanneld (vxlan), two pods each, every pod pinging every other, and a live dashboard
# until Ctrl-C. With --once, or when stdin is not a terminal, the lab is taken down right after
# the check and the exit status is the check's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec bin/flannelctl lab run --name "${FLANNEL_TS_LAB_NAME:-flannel}" "$@"
