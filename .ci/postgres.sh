#!/usr/bin/env bash
# Install (if missing) and start a local PostgreSQL server for the store tests; print the URL to use.
# Sourced by `make test`: exports ACCESSPLAN_TEST_POSTGRES_URL (loopback TCP with a password).
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
su postgres -c "psql -q -h /var/run/postgresql -tc \"SELECT 1 FROM pg_roles WHERE rolname='accessplan'\" | grep -q 1 \
  || psql -q -h /var/run/postgresql -c \"CREATE ROLE accessplan LOGIN PASSWORD 'accessplan' CREATEDB\""
su postgres -c "psql -q -h /var/run/postgresql -tc \"SELECT 1 FROM pg_database WHERE datname='accessplan_test'\" | grep -q 1 \
  || createdb -h /var/run/postgresql -O accessplan accessplan_test"
export ACCESSPLAN_TEST_POSTGRES_URL="postgresql+psycopg://accessplan:accessplan@127.0.0.1:5432/accessplan_test"
