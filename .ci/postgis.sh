#!/usr/bin/env bash
# Bring up a local PostgreSQL 15 + PostGIS 3 for the tests and print its URL.
#
#   eval "$(.ci/postgis.sh)"    # exports TIANYA_TEST_PG
#
# Installs postgresql-15-postgis-3 from Debian when missing (needs root or sudo), starts
# cluster 15/main, and creates the role and database "tianya" (password "tianya") with the
# postgis extension. Idempotent: safe to run again on a machine where all of it exists.
# Human-readable progress goes to stderr; stdout carries only the export line.
set -euo pipefail

PG_VERSION=${PG_VERSION:-15}
PG_CLUSTER=${PG_CLUSTER:-main}
PG_PORT=${PG_PORT:-5432}
PG_DB=${PG_DB:-tianya}
PG_USER=${PG_USER:-tianya}
PG_PASSWORD=${PG_PASSWORD:-tianya}

log() { echo "postgis.sh: $*" >&2; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

ext_dir="/usr/share/postgresql/${PG_VERSION}/extension"
if [ ! -f "${ext_dir}/postgis.control" ]; then
    log "installing postgresql-${PG_VERSION}-postgis-3"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq "postgresql-${PG_VERSION}" "postgresql-${PG_VERSION}-postgis-3" >&2
fi

if ! pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "${PG_VERSION}/${PG_CLUSTER}"; then
    log "creating cluster ${PG_VERSION}/${PG_CLUSTER}"
    $SUDO pg_createcluster "${PG_VERSION}" "${PG_CLUSTER}" --port "${PG_PORT}" >&2
fi

status=$(pg_lsclusters -h | awk -v v="${PG_VERSION}" -v c="${PG_CLUSTER}" '$1==v && $2==c {print $4}')
if [ "${status}" != "online" ]; then
    log "starting cluster ${PG_VERSION}/${PG_CLUSTER}"
    $SUDO pg_ctlcluster "${PG_VERSION}" "${PG_CLUSTER}" start >&2
fi
PG_PORT=$(pg_lsclusters -h | awk -v v="${PG_VERSION}" -v c="${PG_CLUSTER}" '$1==v && $2==c {print $3}')

export PGOPTIONS="-c client_min_messages=warning"
psql_admin() {
    if [ "$(id -u)" -eq 0 ]; then
        su postgres -c "psql -p ${PG_PORT} -v ON_ERROR_STOP=1 -qtA $(printf '%q ' "$@")"
    else
        sudo -u postgres psql -p "${PG_PORT}" -v ON_ERROR_STOP=1 -qtA "$@"
    fi
}

for _ in $(seq 1 30); do
    if pg_isready -q -h localhost -p "${PG_PORT}"; then break; fi
    sleep 1
done

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname='${PG_USER}'")" != "1" ]; then
    log "creating role ${PG_USER}"
    psql_admin -c "CREATE ROLE ${PG_USER} LOGIN PASSWORD '${PG_PASSWORD}'"
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname='${PG_DB}'")" != "1" ]; then
    log "creating database ${PG_DB}"
    psql_admin -c "CREATE DATABASE ${PG_DB} OWNER ${PG_USER}"
fi
psql_admin -d "${PG_DB}" -c "CREATE EXTENSION IF NOT EXISTS postgis"
# Tests drop and recreate their own schemas; restart tests need pg_ctlcluster, not SQL.
psql_admin -d "${PG_DB}" -c "GRANT ALL ON SCHEMA public TO ${PG_USER}"

url="postgresql://${PG_USER}:${PG_PASSWORD}@localhost:${PG_PORT}/${PG_DB}"
log "PostGIS ready at ${url}"
echo "export TIANYA_TEST_PG=${url}"
