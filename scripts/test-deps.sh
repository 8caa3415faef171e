#!/usr/bin/env bash
# Installs what the operations tests drive besides MariaDB and Redis, when
# missing: Chromium (Swagger UI check), Varnish with varnish-modules and nginx
# (local cluster fronts). Quick when all are present. Without them those
# tests skip, saying why.
set -euo pipefail

need=()
command -v chromium >/dev/null || need+=(chromium)
[ -x /usr/sbin/varnishd ] || need+=(varnish)
ls /usr/lib/*/varnish/vmods/libvmod_xkey.so >/dev/null 2>&1 || need+=(varnish-modules)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "test-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null; }; then
    echo "test-deps: could not install ${need[*]}; the tests that need them will skip" >&2
fi
