#!/bin/sh
# Run once by the postgres image's entrypoint when it creates the primary's cluster (/docker-entrypoint-initdb.d).
# The image's pg_hba.conf admits password logins to every database from the network, but a replication
# connection matches only a line naming `replication`: without this one postgres-replica's pg_basebackup is refused.
set -eu
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "${PGDATA}/pg_hba.conf"
