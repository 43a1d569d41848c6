#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL 15 on 127.0.0.1, unless SLUICE_TEST_PG_URL is
# already set. Installs Debian's postgresql package when it is missing. PostgreSQL refuses
# to run as root, so the cluster belongs to the postgres user, in a folder it can reach.
set -euo pipefail
if [ -n "${SLUICE_TEST_PG_URL:-}" ]; then
  exec "$@"
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres
DATA=$(mktemp -d /tmp/sluice-pg.XXXXXX)
chown postgres "$DATA"
chmod 700 "$DATA"
PORT=${SLUICE_TEST_PG_PORT:-55432}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg "$PGBIN/initdb" -D "$DATA/data" -U postgres --auth=trust -E UTF8 >/dev/null
cat >> "$DATA/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DATA'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 256MB
CONF
as_pg "$PGBIN/pg_ctl" -D "$DATA/data" -l "$DATA/log" -w start >/dev/null
cleanup() { as_pg "$PGBIN/pg_ctl" -D "$DATA/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DATA"; }
trap cleanup EXIT
export SLUICE_TEST_PG_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
"$@"
