#!/usr/bin/env bash
# The part of the official postgres image's entrypoint that compose.stack.yaml relies on. On an empty
# $PGDATA: initdb with POSTGRES_USER (default postgres) and POSTGRES_PASSWORD, trust on the local socket and
# scram-sha-256 from any address, then create POSTGRES_DB (default: the user's name) on a server that
# listens on the socket only, so that no client sees a half-initialised database. Then postgres runs as
# this process (PID 1), listening on every interface. /docker-entrypoint-initdb.d is not supported.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set; set POSTGRES_PASSWORD" >&2
        exit 1
    fi
    echo "initialising a new cluster in $PGDATA for user '$user', database '$db'"
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of arguments, as in the official image
    initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
    printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
    printf '\nhost all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
        # :"db" makes psql quote the name as an identifier.
        psql -v ON_ERROR_STOP=1 --no-psqlrc --username="$user" --dbname=postgres --set db="$db" <<<'CREATE DATABASE :"db";' >/dev/null
        pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "initialisation complete"
fi

exec "$@"
