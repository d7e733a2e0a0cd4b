"""The demonstrations behind demo.py: `pipeline` (synthetic data -> records
-> training -> evaluation -> interpretation, for every model family) and
`semi_supervised` (noisy-student training, `demo.py --semi-supervised`).
They sit above the library layers they drive and below the commands."""
