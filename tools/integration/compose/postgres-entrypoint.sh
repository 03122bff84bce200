#!/bin/bash
# First start: make the cluster in PGDATA with POSTGRES_USER (default postgres) as its
# superuser, POSTGRES_PASSWORD (required) for connections over the network, and the
# database POSTGRES_DB (default: the user's name). Later starts reuse PGDATA as it is.
set -euo pipefail

fail() {
    echo "postgres-entrypoint: $*" >&2
    exit 1
}

initialize() {
    [ -n "${POSTGRES_PASSWORD:-}" ] || fail "POSTGRES_PASSWORD is not set (or empty)"
    local user=${POSTGRES_USER:-postgres}
    local database=${POSTGRES_DB:-$user}
    local name
    for name in POSTGRES_USER POSTGRES_DB POSTGRES_PASSWORD; do
        [[ "${!name:-}" != *$'\n'* ]] || fail "$name: must be a single line"
    done
    local password_file
    password_file=$(mktemp)
    trap 'rm -f "$password_file"' EXIT
    printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"  # printf is a builtin: not in ps
    initdb --pgdata="$PGDATA" --username="$user" --pwfile="$password_file" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --no-locale >/dev/null
    rm -f "$password_file"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$database" != postgres ]; then
        # On the Unix socket only while the database is made; psql quotes the name.
        pg_ctl --pgdata="$PGDATA" --silent --wait -o "-c listen_addresses=''" start
        psql --quiet --no-psqlrc -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
            -v name="$database" <<< 'CREATE DATABASE :"name";'
        pg_ctl --pgdata="$PGDATA" --silent --wait -m fast stop
    fi
}

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    initialize
fi
exec "$@"
