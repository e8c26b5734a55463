#!/usr/bin/env bash
# npm run lab: set up what is missing, then show a flannel cluster on this machine.
# Until the data plane lands (issue #4), hosts use the alloc backend: each leases a subnet and
# writes subnet.env, and the lab shows the leases; then it is taken down again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
name=${FLANNEL_TS_LAB_NAME:-flannel}
trap 'bin/flannelctl lab down --name "$name" >/dev/null 2>&1 || true' EXIT
bin/flannelctl lab down --name "$name" >/dev/null 2>&1 || true
bin/flannelctl lab up --name "$name" --nodes 3 --backend alloc
bin/flannelctl lab status --name "$name"
echo "Taking the lab down."
