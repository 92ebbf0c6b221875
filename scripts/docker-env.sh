# shellcheck shell=bash
# Sourced by the scripts: pick a docker client that talks to the daemon.
#
# Debian's docker.io ships dockerd 20.10 (API 1.41) with its own client at
# /usr/bin/docker. Some machines also carry a newer client first in PATH
# (/usr/local/bin/docker, API 1.50); it negotiates down, but pinning the API
# version keeps both clients on the daemon's API.
if [[ -z ${DOCKER:-} ]]; then
    if [[ -x /usr/bin/docker ]]; then
        DOCKER=/usr/bin/docker
    else
        DOCKER=docker
    fi
fi
export DOCKER
export DOCKER_API_VERSION=${DOCKER_API_VERSION:-1.41}
