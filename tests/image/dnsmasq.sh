#!/usr/bin/env bash
# Build rampart-dnsmasq:latest: Debian's dnsmasq in a busybox image (tool.sh).
# The DNS and pcap tests run a resolver and its clients from it (busybox
# nslookup, wget and httpd as `busybox APPLET`).
# Needs: dnsmasq-base and busybox-static (Debian packages), a running dockerd.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$HERE/tool.sh" "${RAMPART_DNSMASQ_IMAGE:-rampart-dnsmasq:latest}" \
    '["/usr/sbin/dnsmasq", "--no-daemon", "--user=root", "--no-resolv", "--no-hosts"]' "${DNSMASQ:-/usr/sbin/dnsmasq}"
