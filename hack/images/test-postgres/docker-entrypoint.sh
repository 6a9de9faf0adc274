#!/bin/sh
# Entrypoint of airlock.dev/test-postgres (busybox sh): Debian's PostgreSQL server for the
# end-to-end tests, started the way the official postgres image starts.
#
# On the first start (no $PGDATA/PG_VERSION) it runs initdb as the postgres user (uid 999) with
# password authentication (scram-sha-256) for every connection, the superuser POSTGRES_USER
# (default postgres) with POSTGRES_PASSWORD (required) and the database POSTGRES_DB (default
# POSTGRES_USER); runs /docker-entrypoint-initdb.d/*.sql once, in name order, in that database;
# then runs the command (default: postgres, listening on 0.0.0.0:5432) in the foreground.
# Arguments that start with '-' are options of postgres (e.g. -c listen_addresses=127.0.0.1).
# Started as root it prepares $PGDATA and drops to postgres; it also runs as uid 999 directly.
set -eu

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  chmod 2775 /var/run/postgresql
  # busybox su runs only the -c text (no further arguments): the command goes in it, quoted
  cmd=exec
  for a in "$0" "$@"; do cmd="$cmd '$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'"; done
  exec su -p -s /bin/sh postgres -c "$cmd"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "test-postgres: POSTGRES_PASSWORD is required to initialize the database" >&2
    exit 1
  fi
  # a failed initialization must not leave a data directory that the next start would take as done
  trap 'echo "test-postgres: initialization failed; emptying $PGDATA" >&2; pg_ctl -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true; rm -rf "${PGDATA:?}"/*' EXIT
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options
  initdb --username="$user" --pwfile="$pwfile" --auth=scram-sha-256 --locale=C --encoding=UTF8 ${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  {
    echo "host all all 0.0.0.0/0 scram-sha-256"
    echo "host all all ::/0 scram-sha-256"
  } >> "$PGDATA/pg_hba.conf"
  {
    echo "# test-postgres"
    echo "listen_addresses = '*'"
    echo "unix_socket_directories = '/var/run/postgresql'"
    echo "jit = off"
  } >> "$PGDATA/postgresql.conf"

  # the init scripts run on a server that listens on its Unix socket only
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  export PGPASSWORD="$POSTGRES_PASSWORD"
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --no-psqlrc -h /var/run/postgresql -U "$user" -d postgres -v db="$db" <<'SQL'
CREATE DATABASE :"db";
SQL
  fi
  for f in /docker-entrypoint-initdb.d/*.sql; do
    [ -f "$f" ] || continue
    echo "test-postgres: running $f"
    psql -v ON_ERROR_STOP=1 --no-psqlrc -h /var/run/postgresql -U "$user" -d "$db" -f "$f"
  done
  unset PGPASSWORD
  pg_ctl -D "$PGDATA" -m fast -w stop
  trap - EXIT
  echo "test-postgres: initialized $PGDATA"
fi

exec "$@"
