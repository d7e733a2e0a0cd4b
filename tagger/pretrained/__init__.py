"""Published taggers by name: the registry (`registry.py`), the download
(`download.py`), the check of a file against its pinned or recorded size
and sha256 (`checksum.py`) and the cache of original and converted files
with the one resolver every command calls (`store.py`). See
docs/pretrained.md.

    from tagger.pretrained import resolve_model
    resolve_model("msd-transformer")  # ~/.cache/tagger/models/msd-transformer.keras

Importing this package imports no TensorFlow.
"""

from tagger.pretrained.registry import BODY_SETS, MODELS, Pretrained, get, names
from tagger.pretrained.store import (
                                     cache_home,
                                     ensure,
                                     load_pretrained,
                                     model_path,
                                     original_path,
                                     resolve_model,
)

__all__ = ["BODY_SETS", "MODELS", "Pretrained", "get", "names", "cache_home", "ensure",
           "load_pretrained", "model_path", "original_path", "resolve_model"]
