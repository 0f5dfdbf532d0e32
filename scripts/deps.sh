#!/bin/sh
# Install the Debian packages that building, testing and benchmarking Weft need.
# Quiet and fast when everything is already there.
set -e
PKGS="build-essential clang libyaml-dev libprotobuf-c-dev protobuf-c-compiler libpcre2-dev
libxxhash-dev libnghttp2-dev libssl-dev python3 curl wrk nghttp2-client nginx-light haproxy procps iproute2
util-linux mount"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# nginx and haproxy are benchmark peers, not services: keep the packaged daemons stopped.
for s in nginx haproxy; do $SUDO service $s stop >/dev/null 2>&1 || true; done
