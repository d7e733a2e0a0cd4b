"""The tagging engines: the predictor protocol (`predictor`), the engines by
name (`registry`), keras and xla (`keras`), keras-bf16 (`keras_bf16`),
TFLite on LiteRT (`tflite`),
and the tagging loop (`tagging`, with its decoder threads sized by
`decoder_pool`)."""
