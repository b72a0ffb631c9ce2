"""One monitoring config (config.py) read by slo/, prometheus/, grafana/, loki/ and experiments/."""
