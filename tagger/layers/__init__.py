"""Registered custom layers (package "tagger"), one per file."""

from tagger.layers.log_mel import LogMel
from tagger.layers.tagger_info import TaggerInfo

__all__ = ["LogMel", "TaggerInfo"]
