"""A process without TensorFlow: with this folder on PYTHONPATH (see
tests.checks.without_tensorflow_env), importing `tensorflow` or any
`tensorflow*` package fails with ModuleNotFoundError, as on a machine where
it is not installed, and each name asked for is recorded in BLOCKED (a test
reads it with `import sitecustomize`)."""

import sys

BLOCKED = []


class NoTensorFlow:
    """A meta-path finder, first on sys.meta_path, that refuses TensorFlow."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0].startswith("tensorflow"):
            BLOCKED.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (TensorFlow is blocked in "
                                      "this process)", name=name)
        return None


sys.meta_path.insert(0, NoTensorFlow())
