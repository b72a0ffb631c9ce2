"""nginx in front of the app instances: the config the lab renders, and the command that runs it in the foreground.

Static files (`collectstatic` output) and uploaded media are served by nginx from the app's VAR_DIR; everything
else goes to the gunicorn instances over keep-alive connections. A request id the client sent is passed through
(else nginx makes one), the `X-Forwarded-*` headers say what the client asked for (the app trusts them with
`BEHIND_PROXY=on`), and a connection refused or timed out by one instance is retried on the next
(`proxy_next_upstream`), which is what lets instances restart one at a time without a 5xx.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

# Idle keep-alive connections each nginx worker keeps open to the instances: a small pool (2 workers x 2 threads
# answer 4 requests at once), so the app holds a few dozen connections instead of one per client. 32 with one
# nginx worker is the shape the issue measured at 2,000 users on a quiet box (851 req/s, as gunicorn alone).
UPSTREAM_KEEPALIVE = 32
# An idle upstream connection is closed by nginx before gunicorn closes it (GUNICORN_KEEPALIVE_S, 5 s by
# default): nginx never reuses a connection the app is closing at that moment (a POST it could not retry).
UPSTREAM_KEEPALIVE_TIMEOUT_S = 4
# Requests over one keep-alive connection, clients' and upstream: nginx's default (1000) closes the connection of
# a busy client or of the pool every thousand requests, and the reconnect costs the app an accept.
KEEPALIVE_REQUESTS = 100_000
# The header nginx stamps each proxied request with: when it handed the request on (`t=` seconds, ms resolution,
# as Heroku's router and New Relic write it). The app records how long the request waited before Django ran it.
REQUEST_START_HEADER = "X-Request-Start"
# A refused connection fails fast; a slow one is the app's to answer (gunicorn's own timeout is 30 s).
CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 60
# An instance that failed is skipped this long before nginx tries it again.
FAIL_TIMEOUT_S = 2
STATIC_MAX_AGE_S = 3600
MIME_TYPES = Path("/etc/nginx/mime.types")


@dataclass(frozen=True)
class NginxSpec:
    listen_port: int
    upstream_ports: tuple[int, ...]
    static_root: Path
    media_root: Path
    run_dir: Path  # pid file, temp dirs, logs
    host: str = "127.0.0.1"
    status_port: int | None = None  # stub_status for prometheus-nginx-exporter
    worker_processes: int = 1
    # Instances taken out of the rotation (`down`): a rolling restart drains one before stopping it.
    down_ports: tuple[int, ...] = ()


# Each client connection is a connection, and so is each upstream one it is proxied over: users-2000 holds 2,000
# keep-alive clients at once, which the Debian default (768, here 1024) refused as "worker_connections are not enough".
WORKER_CONNECTIONS = 8192


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def nginx_config(spec: NginxSpec) -> str:
    if not spec.upstream_ports:
        raise ValueError("nginx needs at least one upstream port")
    run = spec.run_dir
    servers = "\n".join(
        f"        server {spec.host}:{port} max_fails=1 fail_timeout={FAIL_TIMEOUT_S}s"
        + (" down;" if port in spec.down_ports else ";")
        for port in spec.upstream_ports
    )
    # nginx's master runs as whoever starts it; as root its workers would switch to `nobody`, who cannot read
    # the lab's files.
    user = "user root;\n" if os.geteuid() == 0 else ""
    mime = f"    include {MIME_TYPES};\n" if MIME_TYPES.exists() else ""
    status = (
        f"""
    server {{
        listen {spec.host}:{spec.status_port};
        access_log off;
        location = /stub_status {{
            stub_status;
        }}
    }}
"""
        if spec.status_port
        else ""
    )
    return f"""# Rendered by experiments/lab/nginx.py; edits are overwritten by the next `lab up`.
{user}worker_processes {spec.worker_processes};
pid {run / "nginx.pid"};
error_log {run / "error.log"} warn;
daemon off;

worker_rlimit_nofile {2 * WORKER_CONNECTIONS + 1024};

events {{
    worker_connections {WORKER_CONNECTIONS};
}}

http {{
{mime}    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 30s;
    keepalive_requests {KEEPALIVE_REQUESTS};
    server_tokens off;
    client_max_body_size 8m;
    client_body_temp_path {run / "client_body"};
    proxy_temp_path {run / "proxy"};
    fastcgi_temp_path {run / "fastcgi"};
    uwsgi_temp_path {run / "uwsgi"};
    scgi_temp_path {run / "scgi"};

    # The client's request id when it sent one, else nginx's own: the same id in nginx's log and the app's.
    map $http_x_request_id $chowist_request_id {{
        default $http_x_request_id;
        "" $request_id;
    }}
    log_format chowist escape=json '{{"time":"$time_iso8601","request_id":"$chowist_request_id",'
        '"method":"$request_method","uri":"$request_uri","status":$status,"bytes":$body_bytes_sent,'
        '"request_time":$request_time,"upstream":"$upstream_addr","upstream_status":"$upstream_status",'
        '"upstream_time":"$upstream_response_time"}}';
    access_log {run / "access.log"} chowist buffer=32k flush=1s;

    upstream chowist_app {{
{servers}
        keepalive {UPSTREAM_KEEPALIVE};
        keepalive_timeout {UPSTREAM_KEEPALIVE_TIMEOUT_S}s;
        keepalive_requests {KEEPALIVE_REQUESTS};
    }}

    server {{
        listen {spec.host}:{spec.listen_port};

        location /static/ {{
            alias {spec.static_root}/;
            expires {STATIC_MAX_AGE_S}s;
            add_header X-Request-ID $chowist_request_id always;
        }}
        location /media/ {{
            alias {spec.media_root}/;
            add_header X-Request-ID $chowist_request_id always;
        }}
        location / {{
            proxy_pass http://chowist_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_set_header X-Request-ID $chowist_request_id;
            # Set here whatever the client sent: only nginx's own stamp reaches the app.
            proxy_set_header {REQUEST_START_HEADER} "t=${{msec}}";
            proxy_connect_timeout {CONNECT_TIMEOUT_S}s;
            proxy_read_timeout {READ_TIMEOUT_S}s;
            # Refused or timed-out connections (an instance restarting) go to the next instance; the app's own
            # 5xx answers are passed on, so injected faults and real errors still show.
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries {len(spec.upstream_ports) + 1};
        }}
    }}
{status}}}
"""


def nginx_write(spec: NginxSpec) -> Path:
    """Write the config and create the directories it names; returns the config's path."""
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (spec.run_dir / name).mkdir(exist_ok=True)
    path = spec.run_dir / "nginx.conf"
    path.write_text(nginx_config(spec))
    return path


def nginx_argv(config: Path) -> list[str]:
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
    # -e: the start-up error log too, or nginx tries /var/log/nginx/error.log before reading the config.
    return [binary, "-c", str(config), "-p", str(config.parent), "-e", str(config.parent / "error.log")]
