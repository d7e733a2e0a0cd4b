"""Loads the program's main module into the workers' fork server, once.

A worker forked from multiprocessing's fork server runs the parent's main
module again before it can take an item, unless the server has loaded it
(its imports, for every worker of a build). Naming `__main__`
in the server's preload list is meant to load it there, but before Python
3.13.8 and 3.14.1 the server is never told where the main module is
(CPython issues gh-98552, gh-126631), so nothing is loaded. `tagger.parallel.worker_context` names
this module first in the preload list instead, and passes what the server
needs in an environment variable; the server imports this module, which
loads the main module as a worker would. What cannot be loaded there is
left to the workers, as before.

Only the fork server imports this module, and it acts only on a variable
set by its parent.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from multiprocessing import spawn

from tagger.multiprocessing_internals import main_loading
from tagger.parallel import FORK_SERVER_MAIN


def _imports_of(name: str) -> None:
    """Loads the imports of the module `name`, and not the module itself: a
    worker runs it as `__mp_main__` with runpy, which warns where the name
    is loaded already."""
    module = importlib.import_module(name)
    sys.modules.pop(name, None)
    package, _, child = name.rpartition(".")
    if package and getattr(sys.modules.get(package), child, None) is module:
        delattr(sys.modules[package], child)


def _load_main(text: str | None) -> None:
    """Loads the main module described by `text` (see
    `tagger.parallel.describe_main`) where this process is the fork server
    of the process that wrote it."""
    if not text:
        return
    data = json.loads(text)
    if data.get("parent") != os.getppid():
        return
    sys.path[:] = data.get("sys_path", sys.path)
    sys.argv[:] = data.get("sys_argv", sys.argv)
    # As a worker does: loading the main module must not start processes.
    with main_loading():
        try:
            name = data.get("init_main_from_name")
            if name is not None:
                # Its imports are loaded; a worker runs its body again, which is quick.
                if name != "__main__" and not name.endswith(".__main__"):
                    _imports_of(name)
            elif data.get("init_main_from_path"):
                spawn.import_main_path(data["init_main_from_path"])  # a worker finds it loaded
        except (Exception, SystemExit):  # the workers load it themselves
            pass


_load_main(os.environ.get(FORK_SERVER_MAIN))
