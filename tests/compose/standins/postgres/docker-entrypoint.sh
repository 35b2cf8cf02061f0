#!/bin/sh
# The official image's first start, in short: a cluster owned by POSTGRES_USER
# with POSTGRES_PASSWORD, the database POSTGRES_DB, passwords over the network.
set -eu
user="${POSTGRES_USER:-postgres}"
database="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file="$(mktemp)"
    printf '%s' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}" > "$password_file"
    initdb --username="$user" --pwfile="$password_file" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$database" != postgres ]; then
        pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses=''" --wait start >/dev/null
        psql --username="$user" --dbname=postgres --quiet \
            --command="CREATE DATABASE \"$database\" OWNER \"$user\""
        pg_ctl --pgdata="$PGDATA" --mode=fast --wait stop >/dev/null
    fi
fi
if [ "$1" = postgres ]; then
    shift
    exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
