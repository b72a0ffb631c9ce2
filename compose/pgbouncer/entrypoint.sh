#!/bin/sh
# Render pgbouncer.ini and its userlist from the environment, then run pgbouncer in the foreground. The pool
# settings are the native lab's (experiments/lab/render.py): transaction pooling, 500 clients, 20 per pool.
set -eu
dir=/tmp/pgbouncer
mkdir -p "$dir"
umask 077
printf '"%s" "%s"\n' "$DB_USER" "$DB_PASSWORD" > "$dir/userlist.txt"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
${DB_NAME} = host=${DB_HOST} port=${DB_PORT:-5432} dbname=${DB_NAME}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = ${LISTEN_PORT:-5432}
unix_socket_dir =
auth_type = ${AUTH_TYPE:-scram-sha-256}
auth_file = $dir/userlist.txt
pool_mode = ${POOL_MODE:-transaction}
max_client_conn = ${MAX_CLIENT_CONN:-500}
default_pool_size = ${DEFAULT_POOL_SIZE:-20}
ignore_startup_parameters = extra_float_digits,options
server_reset_query =
INI
exec pgbouncer "$dir/pgbouncer.ini"
