"""The LogQL the Logs dashboard uses, next to the shipper config that produces the streams it selects.

Stream labels are only `service` (app|worker) and `level`; everything else (event, trace_id, view …) is parsed
from the JSON line at query time, so these queries stay cheap and the index stays small.
"""

from __future__ import annotations

from typing import NamedTuple

from monitoring.config import CONFIG

# The only stream labels the shipper (loki/alloy/config.alloy) attaches.
STREAM_LABELS = ("service", "level")
SERVICES = ("app", "worker")
ERROR_LEVELS = "error|critical"
# The latency SLO's threshold: requests slower than this spend error budget.
SLOW_REQUEST_MS = f"{CONFIG.latency_threshold_ms:g}"

CHOWIST = '{service=~"app|worker"}'
CHOWIST_ERRORS = f'{{service=~"app|worker", level=~"{ERROR_LEVELS}"}}'


class LogQuery(NamedTuple):
    title: str
    expr: str
    kind: str  # "metric" (a LogQL metric query, plotted) or "logs" (lines)


ERROR_RATE_BY_EVENT = LogQuery(
    title="Error rate by event",
    expr=f'sum by (service, event) (count_over_time({CHOWIST_ERRORS} | json event="event" [$__auto]))',
    kind="metric",
)
LOG_VOLUME_BY_LEVEL = LogQuery(
    title="Log lines by service and level",
    expr=f"sum by (service, level) (count_over_time({CHOWIST} [$__auto]))",
    kind="metric",
)
RECENT_ERRORS = LogQuery(
    # The raw JSON line is kept so the datasource's derived field can find trace_id and link to the trace.
    title="Recent errors (click trace_id for the trace)",
    expr=CHOWIST_ERRORS,
    kind="logs",
)
SLOW_REQUESTS = LogQuery(
    title=f"Slow requests (> {SLOW_REQUEST_MS} ms, the latency SLO threshold)",
    expr=f'{{service="app"}} | json duration_ms="duration_ms", view="view", status="status" | duration_ms > {SLOW_REQUEST_MS}',
    kind="logs",
)
FAULT_CHANGES = LogQuery(
    # `manage.py fault` logs fault_changed; each app/consumer process logs faults_reloaded when it picks it up.
    title="Fault flag changes and reloads",
    expr=f'{CHOWIST} |~ "fault_changed|faults_reloaded" | json',
    kind="logs",
)

ALL: tuple[LogQuery, ...] = (ERROR_RATE_BY_EVENT, LOG_VOLUME_BY_LEVEL, RECENT_ERRORS, SLOW_REQUESTS, FAULT_CHANGES)
