"""Kept beside pyproject.toml (which holds the project's metadata) for the
Beam runners: workers install the package with
`--beam-option setup_file=./setup.py` (see docs/beam.md)."""

from setuptools import setup

setup()
