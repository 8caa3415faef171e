#!/usr/bin/env bash
# Three feedgate instances on this machine, sharing the local MariaDB and
# Redis (a database and a key prefix of their own), behind Varnish (with
# xkey, wired to the purge hook) or nginx when installed: the compose file's
# layout without Docker.
#
#   deploy/local-cluster.sh up     start it all; the last line printed is the front URL
#   deploy/local-cluster.sh down   stop what `up` started, drop its database and keys
#
# Environment, all optional:
#   FEEDGATE_BIN   the binary (default target/release/feedgate, built if missing)
#   CLUSTER_DIR    pid files, logs and generated configs (default /tmp/feedgate-cluster)
#   CLUSTER_FRONT  varnish, nginx or none (default: the first one installed;
#                  none means the first instance is the front)
#   CLUSTER_PORTS  "FRONT P1 P2 P3 OPS1 OPS2 OPS3" (default: free ports)
#   MYSQL_SERVER   default mysql://root@127.0.0.1:3306
#   REDIS_URL      default redis://127.0.0.1:6379/0
#
# Each instance serves its API on Pn and /metrics, /healthz, /readyz on OPSn,
# logs JSON lines to CLUSTER_DIR/feedgate-n.log, and runs `feedgate migrate`
# first, as the compose file and the Kubernetes Job do.
set -euo pipefail

DEPLOY=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$DEPLOY")
DIR=${CLUSTER_DIR:-${TMPDIR:-/tmp}/feedgate-cluster}
MYSQL_SERVER=${MYSQL_SERVER:-mysql://root@127.0.0.1:3306}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}

die() { echo "local-cluster: $*" >&2; exit 1; }

# Runs SQL on MYSQL_SERVER with the mysql client.
sql() {
    [[ $MYSQL_SERVER =~ ^mysql://([^:@/]+)(:([^@]*))?@([^:/]+)(:([0-9]+))?/?$ ]] \
        || die "MYSQL_SERVER must look like mysql://user[:password]@host[:port]"
    MYSQL_PWD=${BASH_REMATCH[3]} mysql --protocol=tcp -h "${BASH_REMATCH[4]}" \
        -P "${BASH_REMATCH[6]:-3306}" -u "${BASH_REMATCH[1]}" -e "$1"
}

# A port nothing listens on, below the kernel's ephemeral range so that no
# outgoing connection takes it before the instance binds it.
free_port() {
    local low port
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for _ in $(seq 200); do
        port=$((10000 + RANDOM % (low - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

wait_for() {
    local url=$1 what=$2
    for _ in $(seq 300); do
        curl -sf -o /dev/null "$url" && return 0
        sleep 0.1
    done
    die "$what did not answer at $url within 30 s (logs in $DIR)"
}

# Waits for instance $1 to be ready; fails at once, with its log, if it exits.
wait_for_instance() {
    local i=$1 pid
    pid=$(cat "$DIR/feedgate-$i.pid")
    for _ in $(seq 600); do
        curl -sf -o /dev/null "http://127.0.0.1:${PORTS[$((i + 3))]}/readyz" && return 0
        kill -0 "$pid" 2>/dev/null || die "instance $i exited: $(tail -5 "$DIR/feedgate-$i.log")"
        sleep 0.1
    done
    die "instance $i was not ready within 60 s: $(tail -5 "$DIR/feedgate-$i.log")"
}

pick_front() {
    if [ -n "${CLUSTER_FRONT:-}" ]; then
        echo "$CLUSTER_FRONT"
    elif command -v varnishd >/dev/null && ls /usr/lib/*/varnish/vmods/libvmod_xkey.so >/dev/null 2>&1; then
        echo varnish
    elif command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
        echo nginx
    else
        echo none
    fi
}

start_varnish() {
    local front=$1
    local vcl="$DIR/varnish.vcl"
    cp "$DEPLOY/varnish.vcl" "$vcl"
    for i in 1 2 3; do
        sed -i "s/\.host = \"feedgate$i\"; \.port = \"8080\";/.host = \"127.0.0.1\"; .port = \"${PORTS[$i]}\";/" "$vcl"
    done
    grep -q '"feedgate' "$vcl" && die "could not point $vcl at the local instances"
    PATH=$PATH:/usr/sbin varnishd -a "127.0.0.1:$front" -f "$vcl" -n "$DIR/varnish" \
        -s malloc,64m -j none -P "$DIR/varnish.pid" \
        </dev/null >>"$DIR/varnish.log" 2>&1 || die "varnishd failed: $(cat "$DIR/varnish.log")"
}

start_nginx() {
    local front=$1
    mkdir -p "$DIR/nginx-tmp"
    chmod 1777 "$DIR/nginx-tmp"
    cat >"$DIR/nginx.conf" <<EOF
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log $DIR/nginx-access.log;
    client_body_temp_path $DIR/nginx-tmp/body;
    proxy_temp_path $DIR/nginx-tmp/proxy;
    fastcgi_temp_path $DIR/nginx-tmp/fastcgi;
    uwsgi_temp_path $DIR/nginx-tmp/uwsgi;
    scgi_temp_path $DIR/nginx-tmp/scgi;
    upstream feedgate {
        server 127.0.0.1:${PORTS[1]} max_fails=1 fail_timeout=5s;
        server 127.0.0.1:${PORTS[2]} max_fails=1 fail_timeout=5s;
        server 127.0.0.1:${PORTS[3]} max_fails=1 fail_timeout=5s;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$front;
        location / {
            proxy_pass http://feedgate;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_next_upstream error timeout;
        }
    }
}
EOF
    PATH=$PATH:/usr/sbin nginx -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/nginx-error.log" \
        </dev/null >>"$DIR/nginx-error.log" 2>&1 || die "nginx failed: $(cat "$DIR/nginx-error.log")"
}

up() {
    [ -e "$DIR/cluster.env" ] && die "already up (state in $DIR); run '$0 down' first"
    local front_kind bin suffix
    front_kind=$(pick_front)
    case $front_kind in varnish | nginx | none) ;; *) die "CLUSTER_FRONT must be varnish, nginx or none" ;; esac
    bin=${FEEDGATE_BIN:-$ROOT/target/release/feedgate}
    if [ -z "${FEEDGATE_BIN:-}" ] && [ ! -x "$bin" ]; then
        (cd "$ROOT" && cargo build --release --bin feedgate) >&2
    fi
    [ -x "$bin" ] || die "no feedgate binary at $bin (set FEEDGATE_BIN)"

    if [ -n "${CLUSTER_PORTS:-}" ]; then
        read -r -a PORTS <<<"$CLUSTER_PORTS"
        [ "${#PORTS[@]}" -eq 7 ] || die "CLUSTER_PORTS needs 7 ports: FRONT P1 P2 P3 OPS1 OPS2 OPS3"
    else
        PORTS=()
        for _ in 1 2 3 4 5 6 7; do
            local port
            port=$(free_port)
            while [[ " ${PORTS[*]} " == *" $port "* ]]; do port=$(free_port); done
            PORTS+=("$port")
        done
    fi

    mkdir -p "$DIR"
    # A failed start stops whatever it had started.
    trap 'status=$?; if [ $status -ne 0 ] && [ -e "$DIR/cluster.env" ]; then down >&2 || true; fi' EXIT
    suffix=$(head -c 5 /dev/urandom | od -An -tx1 | tr -d ' \n')
    local database="feedgate_cluster_$suffix" prefix="feedgate-cluster-$suffix"
    sql "CREATE DATABASE $database CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    {
        echo "DATABASE=$database"
        echo "PREFIX=$prefix"
        echo "FRONT_KIND=$front_kind"
        echo "MYSQL_SERVER=$MYSQL_SERVER"
        echo "REDIS_URL=$REDIS_URL"
    } >"$DIR/cluster.env"

    local purge_url=""
    [ "$front_kind" = varnish ] && purge_url="http://127.0.0.1:${PORTS[0]}/purge"
    (umask 077 && head -c 48 /dev/urandom | base64 -w0 >"$DIR/jwt-secret")
    export DATABASE_URL="$MYSQL_SERVER/$database" REDIS_URL
    export FEEDGATE_JWT_SECRET
    FEEDGATE_JWT_SECRET=$(cat "$DIR/jwt-secret")
    export FEEDGATE_CACHE__REDIS_PREFIX=$prefix FEEDGATE_CACHE__PURGE_URL=$purge_url
    export FEEDGATE_LOG__FORMAT=json

    (cd "$DIR" && "$bin" migrate) >"$DIR/migrate.log" 2>&1 || die "migration failed: $(cat "$DIR/migrate.log")"

    for i in 1 2 3; do
        (cd "$DIR" && FEEDGATE_LISTEN="127.0.0.1:${PORTS[$i]}" \
            FEEDGATE_SERVER__OPS_LISTEN="127.0.0.1:${PORTS[$((i + 3))]}" \
            exec "$bin" serve </dev/null >"$DIR/feedgate-$i.log" 2>&1) &
        echo $! >"$DIR/feedgate-$i.pid"
    done
    for i in 1 2 3; do
        wait_for_instance "$i"
        echo "instance $i: http://127.0.0.1:${PORTS[$i]} (ops http://127.0.0.1:${PORTS[$((i + 3))]})"
    done

    local front_url
    case $front_kind in
        varnish) start_varnish "${PORTS[0]}" ;;
        nginx) start_nginx "${PORTS[0]}" ;;
    esac
    if [ "$front_kind" = none ]; then
        front_url="http://127.0.0.1:${PORTS[1]}"
    else
        front_url="http://127.0.0.1:${PORTS[0]}"
        wait_for "$front_url/healthz" "$front_kind"
    fi
    trap - EXIT
    echo "front: $front_kind"
    echo "$front_url"
}

# Stops the process in a pid file: TERM, then KILL after 10 s.
stop_pidfile() {
    local file=$1 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if kill -TERM "$pid" 2>/dev/null; then
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

down() {
    [ -e "$DIR/cluster.env" ] || die "nothing to stop in $DIR"
    # shellcheck disable=SC1091
    source "$DIR/cluster.env"
    stop_pidfile "$DIR/varnish.pid"
    stop_pidfile "$DIR/nginx.pid"
    for i in 1 2 3; do stop_pidfile "$DIR/feedgate-$i.pid"; done
    sql "DROP DATABASE IF EXISTS $DATABASE"
    redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX:*" | xargs -r redis-cli -u "$REDIS_URL" DEL >/dev/null
    rm -rf "$DIR"
    echo "stopped; dropped database $DATABASE and Redis keys $PREFIX:*"
}

case ${1:-} in
    up) up ;;
    down) down ;;
    *) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//; /^set -e/d' >&2; exit 2 ;;
esac
