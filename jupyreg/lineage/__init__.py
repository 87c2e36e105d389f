"""Lineage capture: git, notebook, data, hardware and environment, without MLflow."""
