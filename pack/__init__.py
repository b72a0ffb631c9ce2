"""The SLO pack: rules, alert routing, dashboards, runbooks and Kubernetes manifests for any django-prometheus app.

`python -m pack --config my-pack.yaml --out DIR` writes the pack for someone's app (monitoring/pack_config.py
describes the config); `python -m pack --lab` writes the lab's own rule files and dashboards into this repo, by
the same code path (`make slo dashboards`).
"""
