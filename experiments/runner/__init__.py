"""The experiment runner: load a catalogue entry, drive the lab and Locust, query Prometheus, write the report."""
