"""Loki and log shipper configs, and the LogQL the dashboards use (queries.py)."""
