"""Makes the project pip-installable: `pip install .`, and what Beam workers
install when a pipeline is launched with `--beam-option setup_file=./setup.py`
(see docs/beam.md). The dependencies are requirements.txt's."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
REQUIREMENTS = [line.split("#")[0].strip()
                for line in (HERE / "requirements.txt").read_text().splitlines()
                if line.split("#")[0].strip()]

setup(
    name="tagger",
    version="0.1.0",
    description="Music auto-tagging with Keras 3 and TensorFlow",
    packages=find_packages(include=["tagger", "tagger.*"]),
    install_requires=REQUIREMENTS,
    python_requires=">=3.10",
)
