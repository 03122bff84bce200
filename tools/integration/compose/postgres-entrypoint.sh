#!/bin/bash
# First start: make the cluster in PGDATA with POSTGRES_USER (default postgres) as its
# superuser, POSTGRES_PASSWORD (required) for connections over the network, and the
# database POSTGRES_DB (default: the user's name). Later starts reuse PGDATA as it is.
set -euo pipefail

fail() {
    echo "postgres-entrypoint: $*" >&2
    exit 1
}

# Global, so the EXIT trap still names it when initdb fails and set -e ends the script.
password_file=""
trap 'rm -f -- "$password_file"' EXIT

check_name() {  # setting value
    [[ "$2" != *[[:cntrl:]]* ]] || fail "$1: must not hold control characters"
    [ "$(printf '%s' "$2" | wc -c)" -le 63 ] || fail "$1: longer than 63 bytes"
}

initialize() {
    [ -n "${POSTGRES_PASSWORD:-}" ] || fail "POSTGRES_PASSWORD is not set (or empty)"
    local user=${POSTGRES_USER:-postgres}
    local database=${POSTGRES_DB:-$user}
    local name
    for name in POSTGRES_USER POSTGRES_DB POSTGRES_PASSWORD; do
        [[ "${!name:-}" != *$'\n'* ]] || fail "$name: must be a single line"
    done
    # initdb writes the user's name between double quotes without escaping any, and
    # Postgres cuts names at 63 bytes: the server's connection URL would name a user or a
    # database that is not there.
    [[ "$user" != *\"* ]] || fail "POSTGRES_USER: must not hold a double quote"
    [[ "$user" != pg_* ]] || fail "POSTGRES_USER: names starting with pg_ are reserved"
    check_name POSTGRES_USER "$user"
    check_name POSTGRES_DB "$database"
    password_file=$(mktemp)
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
