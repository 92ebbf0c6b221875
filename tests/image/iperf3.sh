#!/usr/bin/env bash
# Build rampart-iperf3:latest: Debian's iperf3 in a busybox image (tool.sh).
# The flow tests and the bench run it between two containers.
# Needs: iperf3 and busybox-static (Debian packages), a running dockerd.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$HERE/tool.sh" "${RAMPART_IPERF3_IMAGE:-rampart-iperf3:latest}" '["/usr/bin/iperf3", "-s"]' "${IPERF3:-/usr/bin/iperf3}"
