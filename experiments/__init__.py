"""Chowist Lab experiments: the native lab (lab/), the runner, the catalogue and the reports."""
