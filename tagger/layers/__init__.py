"""Registered custom layers (package "tagger"), one per file."""

from tagger.layers.cls_token import ClsToken
from tagger.layers.harmonic_stft import HarmonicSTFT
from tagger.layers.inference_conv2d import InferenceConv2D
from tagger.layers.learned_positions import LearnedPositions
from tagger.layers.log_mel import LogMel
from tagger.layers.multi_head_self_attention import MultiHeadSelfAttention
from tagger.layers.philox_dropout import PhiloxDropout
from tagger.layers.pooled_batch_norm import PooledBatchNorm
from tagger.layers.select_token import SelectToken
from tagger.layers.sinusoidal_positions import SinusoidalPositions
from tagger.layers.transformer_encoder_layer import TransformerEncoderLayer

__all__ = [
    "ClsToken",
    "HarmonicSTFT",
    "InferenceConv2D",
    "LearnedPositions",
    "LogMel",
    "MultiHeadSelfAttention",
    "PhiloxDropout",
    "PooledBatchNorm",
    "SelectToken",
    "SinusoidalPositions",
    "TransformerEncoderLayer",
]
