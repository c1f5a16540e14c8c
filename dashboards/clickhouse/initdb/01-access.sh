#!/bin/bash
# Run by the clickhouse-server image at its first start (docker-entrypoint-initdb.d) as
# the bootstrap user: creates filterwatch's writer, analyst and district roles and users
# from dashboards/sql/access.sql. Passwords come from the environment and are hashed
# here; `filterwatch access-ddl` renders the same DDL for a server you run yourself.
set -euo pipefail
: "${FILTERWATCH_WRITER_PASSWORD:?set FILTERWATCH_WRITER_PASSWORD (12+ characters)}"
: "${FILTERWATCH_ANALYST_PASSWORD:?set FILTERWATCH_ANALYST_PASSWORD (12+ characters)}"
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
sed -e "s/{db}/${FILTERWATCH_DATABASE:-filterwatch}/g" \
    -e "s/{writer_sha256}/$(sha "$FILTERWATCH_WRITER_PASSWORD")/" \
    -e "s/{analyst_sha256}/$(sha "$FILTERWATCH_ANALYST_PASSWORD")/" \
    /filterwatch/access.sql \
  | clickhouse client --user "${CLICKHOUSE_USER:-default}" --password "${CLICKHOUSE_PASSWORD:-}" -n
