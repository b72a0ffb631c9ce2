"""Render the dashboard specs (grafana.panels) to Grafana dashboard JSON with grafana-foundation-sdk."""

from __future__ import annotations

import json
import string
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dashboard_b
from grafana_foundation_sdk.builders import logs as logs_b
from grafana_foundation_sdk.builders import loki as loki_b
from grafana_foundation_sdk.builders import prometheus as prometheus_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as timeseries_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dashboard_m
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from grafana import datasources
from grafana.panels import DASHBOARDS, Dashboard, Panel, Query, Variable

REFRESH = "10s"
# Experiments last ~10 minutes: open on the last 15 so one fits on screen.
TIME_FROM = "now-15m"


def version_tag(version: int) -> str:
    return f"version:{version}"


def _prometheus_target(query: Query, ref_id: str, *, table: bool) -> prometheus_b.Dataquery:
    target = (
        prometheus_b.Dataquery()
        .expr(query.expr)
        .ref_id(ref_id)
        .datasource(datasources.PROMETHEUS_VARIABLE)
        .legend_format(query.legend or "__auto")
    )
    target = target.instant() if query.instant else target.range()
    if table:
        target = target.format(PromQueryFormat.TABLE)
    return target


def _loki_target(query: Query, ref_id: str) -> loki_b.Dataquery:
    target = loki_b.Dataquery().expr(query.expr).ref_id(ref_id).datasource(datasources.LOKI_VARIABLE)
    if query.legend:
        target = target.legend_format(query.legend)
    return target


def _panel_builder(panel: Panel) -> Any:
    if panel.kind == "timeseries":
        legend = (
            common_b.VizLegendOptions()
            .display_mode(common_m.LegendDisplayMode.TABLE)
            .placement(common_m.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max", "lastNotNull"])
        )
        return timeseries_b.Panel().legend(legend).fill_opacity(10).line_width(1).span_nulls(False)
    if panel.kind == "stat":
        return stat_b.Panel().reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]))
    if panel.kind == "table":
        return table_b.Panel()
    if panel.kind == "logs":
        return (
            logs_b.Panel()
            .show_time(True)
            .wrap_log_message(True)
            .enable_log_details(True)
            .sort_order(common_m.LogsSortOrder.DESCENDING)
        )
    raise ValueError(f"unknown panel kind {panel.kind!r}")


def _panel(panel: Panel, panel_id: int) -> Any:
    builder = (
        _panel_builder(panel)
        .id(panel_id)
        .title(panel.title)
        .span(panel.width)
        .height(panel.height)
        .datasource(datasources.PROMETHEUS_VARIABLE if panel.datasource == "prometheus" else datasources.LOKI_VARIABLE)
    )
    if panel.description:
        builder = builder.description(panel.description)
    if panel.kind != "logs":
        builder = builder.unit(panel.unit)
    for ref_id, query in zip(string.ascii_uppercase, panel.queries, strict=False):
        if panel.datasource == "prometheus":
            builder = builder.with_target(_prometheus_target(query, ref_id, table=panel.kind == "table"))
        else:
            builder = builder.with_target(_loki_target(query, ref_id))
    return builder


def _variable(variable: Variable) -> Any:
    if variable.kind == "datasource":
        return dashboard_b.DatasourceVariable(variable.name).label(variable.label).type(variable.query)
    current = None
    if variable.default is not None:
        text = next((label for label, value in variable.options if value == variable.default), variable.default)
        current = dashboard_m.VariableOption(text=text, value=variable.default)
    if variable.kind == "query":
        builder = (
            dashboard_b.QueryVariable(variable.name)
            .label(variable.label)
            .query(variable.query)
            .datasource(datasources.PROMETHEUS_VARIABLE)
            .refresh(dashboard_m.VariableRefresh.ON_DASHBOARD_LOAD)
        )
    elif variable.kind == "custom":
        # Grafana's "label : value" syntax; single-valued, so the regex values reach PromQL unescaped.
        values = ",".join(f"{label} : {value}" for label, value in variable.options)
        builder = dashboard_b.CustomVariable(variable.name).label(variable.label).values(values)
    else:
        raise ValueError(f"unknown variable kind {variable.kind!r}")
    return builder.current(current) if current is not None else builder


def dashboard_json(spec: Dashboard) -> dict[str, Any]:
    """The dashboard as the JSON object Grafana provisions (plain dicts, stable key order)."""
    builder = (
        dashboard_b.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags([*spec.tags, version_tag(spec.version)])
        .version(spec.version)
        .editable()
        .refresh(REFRESH)
        .time(TIME_FROM, "now")
        .timezone("utc")
        .tooltip(dashboard_m.DashboardCursorSync.CROSSHAIR)
        .link(
            dashboard_b.DashboardLink(f"{spec.tags[0].capitalize()} dashboards")
            .type(dashboard_m.DashboardLinkType.DASHBOARDS)
            .tags([spec.tags[0]])
            .as_dropdown(True)
            .keep_time(True)
        )
    )
    for variable in spec.variables:
        builder = builder.with_variable(_variable(variable))
    panel_id = 1
    for row in spec.rows:
        builder = builder.with_row(dashboard_b.Row(row.title).id(panel_id))
        panel_id += 1
        for panel in row.panels:
            builder = builder.with_panel(_panel(panel, panel_id))
            panel_id += 1
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


def dashboard_file_name(spec: Dashboard) -> str:
    # The uid without the service prefix (its first tag): service-overview.json, slos.json, ...
    return f"{spec.uid.removeprefix(spec.tags[0] + '-')}.json"


def all_dashboards(boards: tuple[Dashboard, ...] = DASHBOARDS) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON for every dashboard (default: the lab's)."""
    return {dashboard_file_name(spec): dashboard_json(spec) for spec in boards}


def dashboard_versions(boards: tuple[Dashboard, ...] = DASHBOARDS) -> dict[str, dict[str, Any]]:
    """uid -> {title, version}: what the experiment report quotes next to its figures."""
    return {spec.uid: {"title": spec.title, "version": spec.version} for spec in boards}
