"""Export for serving: SavedModel and TFLite (`formats`, behind export.py,
configured by `config`), the int8 calibration (`quantize`) and the cache of
calibrated int8 models (`int8_cache`)."""
