#!/usr/bin/env bash
# Install (if missing) and start a local PostgreSQL server for the store tests; print the URLs to use.
# Sourced by `make test`: exports ACCESSPLAN_TEST_POSTGRES_URL (the app's role, `accessplan`) and
# ACCESSPLAN_TEST_POSTGRES_OWNER_URL (the role that owns the database and runs the migrations,
# `accessplan_owner`), both loopback TCP with a password. Idempotent: an existing test database owned
# by the app role is handed to the owner role, with its `public` schema.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
pg_ctlcluster "$version" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -q -h /var/run/postgresql && break
  sleep 1
done
accessplan_psql() {  # accessplan_psql DATABASE SQL: run SQL as the superuser
  su postgres -c "psql -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -d $1 -tAc \"$2\""
}
for role in accessplan accessplan_owner; do
  accessplan_psql postgres "SELECT 1 FROM pg_roles WHERE rolname='$role'" | grep -q 1 \
    || accessplan_psql postgres "CREATE ROLE $role LOGIN PASSWORD '$role'"
done
accessplan_psql postgres "ALTER ROLE accessplan CREATEDB"
# pytest -n (xdist) gives each worker its own database, <database>_gw0, <database>_gw1 …, made by the
# owner role on first use (tests/conftest.py: postgres_urls), so the owner role may create databases
accessplan_psql postgres "ALTER ROLE accessplan_owner CREATEDB"
database=${ACCESSPLAN_TEST_DATABASE:-accessplan_test}
accessplan_psql postgres "SELECT 1 FROM pg_database WHERE datname='$database'" | grep -q 1 \
  || su postgres -c "createdb -h /var/run/postgresql -O accessplan_owner $database"
# the app role must own neither the database nor its schema (a schema's owner may drop its tables)
accessplan_psql postgres "ALTER DATABASE $database OWNER TO accessplan_owner"
accessplan_psql "$database" "ALTER SCHEMA public OWNER TO accessplan_owner"
accessplan_psql postgres "GRANT CONNECT ON DATABASE $database TO accessplan"
accessplan_psql "$database" "GRANT USAGE ON SCHEMA public TO accessplan"
export ACCESSPLAN_TEST_POSTGRES_URL="postgresql+psycopg://accessplan:accessplan@127.0.0.1:5432/$database"
export ACCESSPLAN_TEST_POSTGRES_OWNER_URL="postgresql+psycopg://accessplan_owner:accessplan_owner@127.0.0.1:5432/$database"
