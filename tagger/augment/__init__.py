"""In-graph audio augmentation (keras.ops, keyed counter-based draws, one module per transform)."""

from tagger.augment.chain import AudioAugmentation, Augmentation, AugmentConfig, augment, step_seed

__all__ = ["AudioAugmentation", "AugmentConfig", "Augmentation", "augment", "step_seed"]
