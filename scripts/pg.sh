#!/usr/bin/env bash
# A throwaway PostgreSQL cluster from the system's binaries, for the test suite.
#   scripts/pg.sh start DIR   → prints the SQLAlchemy URL on stdout
#   scripts/pg.sh stop DIR
#   scripts/pg.sh bindir      → the directory of the server and client binaries
# As root, the cluster runs as the `postgres` user (initdb refuses root).
set -euo pipefail
cmd=${1:?start|stop|bindir}; dir=${2:-}

find_bindir() {
    if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir; return
    fi
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}
bindir=$(find_bindir)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "==> installing PostgreSQL server binaries (apt-get install postgresql)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bindir=$(find_bindir)
    else
        echo "PostgreSQL server binaries not found; install the postgresql package" >&2
        exit 1
    fi
fi

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
bindir)
    echo "$bindir"
    ;;
start)
    [ -n "$dir" ] || { echo "usage: $0 start DIR" >&2; exit 2; }
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >/dev/null
    # Durability is pointless for a throwaway test cluster: turn it off for speed.
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -s \
        -o "-k $dir -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start
    echo "postgresql+psycopg://postgres@/postgres?host=$dir"
    ;;
stop)
    if [ -d "$dir/data" ]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -s stop || true
    fi
    rm -rf "$dir"
    ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
