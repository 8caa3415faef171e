#!/usr/bin/env bash
# Starts MariaDB and Redis on this machine if they do not answer, then waits
# until both do. Safe to run repeatedly.
set -euo pipefail

mysql_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

wait_for() {
    local name=$1 check=$2
    for _ in $(seq 1 60); do
        if $check; then return 0; fi
        sleep 1
    done
    echo "services: $name did not come up within 60 s" >&2
    return 1
}

if ! mysql_up; then
    echo "services: starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_for MariaDB mysql_up
fi

if ! redis_up; then
    echo "services: starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    wait_for Redis redis_up
fi

echo "services: MariaDB and Redis are up"
