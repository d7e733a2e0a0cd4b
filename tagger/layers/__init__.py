"""Registered custom layers (package "tagger"), one per file."""

from tagger.layers.log_mel import LogMel

__all__ = ["LogMel"]
