#!/usr/bin/env bash
# Starts the servers the tests use, each only if it does not answer, then
# waits until all do. Safe to run repeatedly; quick when everything is up.
#
# - MariaDB on 3306 and Redis on 6379: the machine's own (no binary log).
# - A MariaDB primary with a binary log and GTID (3316) and a replica of it
#   (3317) replicating with GTID: read replicas and commit positions.
# - A MariaDB that accepts TLS connections only (3318, require_secure_transport)
#   and a Redis serving TLS (6390), both with certificates from a CA made here
#   with `openssl req`.
#
# The extra servers keep their data, sockets, logs and certificates under
# FEEDGATE_SERVICES_DIR (default /tmp/feedgate-services); `scripts/services.sh
# stop` stops them (never the machine's own MariaDB and Redis).
set -euo pipefail

DIR=${FEEDGATE_SERVICES_DIR:-/tmp/feedgate-services}
PRIMARY_PORT=3316
REPLICA_PORT=3317
TLS_MYSQL_PORT=3318
TLS_REDIS_PORT=6390

mysql_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P "$1" -uroot --connect-timeout=2 ping >/dev/null 2>&1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
tls_redis_up() {
    [ "$(redis-cli -h 127.0.0.1 -p "$TLS_REDIS_PORT" --tls --cacert "$DIR/tls/ca.pem" ping 2>/dev/null)" = "PONG" ]
}
sql() { mariadb --protocol=tcp -h 127.0.0.1 -P "$1" -uroot -N -B -e "$2"; }

wait_for() {
    local name=$1
    shift
    for _ in $(seq 1 120); do
        if "$@"; then return 0; fi
        sleep 0.5
    done
    echo "services: $name did not come up within 60 s" >&2
    return 1
}

if [ "${1:-}" = "stop" ]; then
    for name in primary replica secure; do
        pid_file="$DIR/$name/mariadbd.pid"
        [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
    done
    [ -f "$DIR/redis-tls.pid" ] && kill "$(cat "$DIR/redis-tls.pid")" 2>/dev/null || true
    echo "services: the extra servers are stopping"
    exit 0
fi

if ! mysql_up 3306; then
    echo "services: starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_for MariaDB mysql_up 3306
fi

if ! redis_up; then
    echo "services: starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    wait_for Redis redis_up
fi

mkdir -p "$DIR"

# A CA and a server certificate for 127.0.0.1 and localhost, made once.
make_certificates() {
    local tls=$DIR/tls
    [ -f "$tls/server-cert.pem" ] && return 0
    mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=feedgate test CA" \
        -keyout "$tls/ca-key.pem" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$tls/server-key.pem" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$tls/ext.cnf"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" \
        -CAcreateserial -days 3650 -extfile "$tls/ext.cnf" -out "$tls/server-cert.pem" 2>/dev/null
    chmod 644 "$tls"/*.pem
}

# Starts one MariaDB of our own (initialising its data directory the first
# time) unless it answers; `name port [server options...]`.
start_mariadb() {
    local name=$1 port=$2
    shift 2
    mysql_up "$port" && return 0
    local data=$DIR/$name
    if [ ! -d "$data/mysql" ]; then
        rm -rf "$data"
        mkdir -p "$data"
        mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$data/db" \
            --auth-root-authentication-method=normal --skip-test-db >"$data/install.log" 2>&1
        mv "$data/db"/* "$data/" && rmdir "$data/db"
    fi
    echo "services: starting MariaDB $name on $port"
    # --no-defaults: nothing of the machine's own server's configuration.
    mariadbd --no-defaults --user="$(id -un)" --datadir="$data" --port="$port" \
        --bind-address=127.0.0.1 --socket="$data/mariadbd.sock" --pid-file="$data/mariadbd.pid" \
        --log-error="$data/error.log" --skip-name-resolve \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --innodb-buffer-pool-size=64M --innodb-log-file-size=32M --performance-schema=OFF \
        --max-connections=400 "$@" >/dev/null 2>&1 &
    disown
    wait_for "MariaDB $name" mysql_up "$port"
    # Root may connect over TCP from 127.0.0.1 without a password, as on 3306.
    sql "$port" "CREATE USER IF NOT EXISTS root@'127.0.0.1'; \
        GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION" 2>/dev/null ||
        mariadb -S "$data/mariadbd.sock" -uroot -e "CREATE USER IF NOT EXISTS root@'127.0.0.1'; \
        GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION"
}

start_mariadb primary "$PRIMARY_PORT" --server-id=11 --log-bin=binlog --binlog-format=ROW \
    --gtid-domain-id=0 --log-slave-updates --expire-logs-days=1

# The replica also accepts TLS (not required), for replica URLs with sqlx's
# ssl-mode and ssl-ca parameters.
make_certificates
start_mariadb replica "$REPLICA_PORT" --server-id=12 --relay-log=relay --log-bin=binlog \
    --binlog-format=ROW --log-slave-updates --expire-logs-days=1 --skip-slave-start=0 \
    --ssl-ca="$DIR/tls/ca.pem" --ssl-cert="$DIR/tls/server-cert.pem" \
    --ssl-key="$DIR/tls/server-key.pem"

# The replica follows the primary by GTID; set up once, started if stopped
# (a test may have stopped a thread and died before starting it again).
if [ -z "$(sql "$REPLICA_PORT" "SHOW SLAVE STATUS")" ]; then
    echo "services: the replica follows the primary"
    sql "$REPLICA_PORT" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$PRIMARY_PORT, \
        MASTER_USER='root', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1"
fi
sql "$REPLICA_PORT" "START SLAVE" 2>/dev/null || true
replicating() {
    local status
    status=$(mariadb --protocol=tcp -h 127.0.0.1 -P "$REPLICA_PORT" -uroot -e "SHOW SLAVE STATUS\G")
    grep -q "Slave_IO_Running: Yes" <<<"$status" && grep -q "Slave_SQL_Running: Yes" <<<"$status"
}
wait_for "replication from $PRIMARY_PORT to $REPLICA_PORT" replicating

start_mariadb secure "$TLS_MYSQL_PORT" --ssl-ca="$DIR/tls/ca.pem" \
    --ssl-cert="$DIR/tls/server-cert.pem" --ssl-key="$DIR/tls/server-key.pem" \
    --require-secure-transport=ON

if ! tls_redis_up; then
    echo "services: starting Redis with TLS on $TLS_REDIS_PORT"
    redis-server --daemonize yes --bind 127.0.0.1 --port 0 --tls-port "$TLS_REDIS_PORT" \
        --tls-cert-file "$DIR/tls/server-cert.pem" --tls-key-file "$DIR/tls/server-key.pem" \
        --tls-ca-cert-file "$DIR/tls/ca.pem" --tls-auth-clients no \
        --pidfile "$DIR/redis-tls.pid" --dir "$DIR" --save "" --appendonly no >/dev/null
    wait_for "Redis with TLS" tls_redis_up
fi

echo "services: MariaDB, Redis, the primary and its replica, and the TLS servers are up"
