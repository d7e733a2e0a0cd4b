"""Bookkeeping shared by the weight converters: every original tensor is
used exactly once and every weight of our model is set, or one line says
which are left over.

A converter reads the original file into a flat dict `{name: array}`,
builds our model, and moves tensors across with `WeightMap.take` (one
original tensor, with its layout conversion) and `WeightMap.set_layer`
(one layer's weights, by our variable names). Tensors the original file
carries but no model needs (a teacher inside a student checkpoint, batch
counters) are declared with `skip`. `finish` then fails on anything the
file has that was not taken or skipped, anything taken that the file
lacks, and any weight of ours that was not set.

Layout conversions, PyTorch to Keras:
- `conv_kernel`: Conv2d OIHW -> HWIO, Conv1d OIW -> WIO.
- `dense_kernel`: Linear (out, in) -> (in, out).
- `batch_norm`: weight/bias/running_mean/running_var -> gamma, beta,
  moving_mean, moving_variance (the epsilon is the layer's: PyTorch's 1e-5
  is set in our factories); `num_batches_tracked` is a counter, skipped.
- `heads`: a Linear projection to `heads * head_dim` -> our `(dim, heads,
  head_dim)` kernel and `(heads, head_dim)` bias; `heads_out` the output
  projection -> `(heads, head_dim, dim)`.
- `gru`: one layer of a PyTorch GRU (gates r, z, n) -> Keras GRU with
  `reset_after` (gates z, r, h; the same equations).
"""

from __future__ import annotations

import numpy as np

from tagger.errors import UserError

_SHOWN = 4  # names listed in one error line before "... and N more"


class ConversionError(UserError):
    """The original file does not fit the model it is said to hold."""


def _names(names) -> str:
    names = sorted(names)
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return shown + (f" ... and {more} more" if more > 0 else "")


class WeightMap:
    """Moves the tensors of one original file into one Keras model."""

    def __init__(self, tensors: dict, model, source: str):
        self.tensors = {k: np.asarray(v) for k, v in tensors.items()}
        self.model = model
        self.source = source  # how errors name the file, e.g. "teacher.ckpt"
        self.used: set[str] = set()
        self.skipped: set[str] = set()
        self.missing: list[str] = []
        self.assigned: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.tensors

    def take(self, name: str) -> np.ndarray | None:
        """The original tensor `name`, marked used (None if the file lacks it:
        reported by `finish`). Taking a tensor twice is a converter bug."""
        if name in self.used:
            raise RuntimeError(f"tensor {name!r} mapped twice")
        if name not in self.tensors:
            self.missing.append(name)
            return None
        self.used.add(name)
        return self.tensors[name]

    def skip(self, name: str) -> None:
        """Declares a tensor of the file that no weight of ours needs."""
        if name in self.tensors:
            self.skipped.add(name)

    def skip_prefix(self, prefix: str) -> int:
        names = [n for n in self.tensors if n.startswith(prefix)]
        self.skipped.update(names)
        return len(names)

    def set_layer(self, layer_name: str, **values) -> None:
        """Sets weights of our layer `layer_name` by variable name (kernel,
        bias, gamma, ...; nested layers as 'attention/query_kernel'). A None
        value (a missing original tensor) is left for `finish` to report."""
        layer = self.model.get_layer(layer_name)
        variables = {v.path.split("/", 1)[1] if "/" in v.path else v.path: v
                     for v in layer.weights}
        for name, value in values.items():
            variable = variables.get(name)
            if variable is None:
                raise RuntimeError(f"layer {layer_name!r} has no weight {name!r}; "
                                   f"it has {sorted(variables)}")
            if value is None:
                continue
            if tuple(value.shape) != tuple(variable.shape):
                raise ConversionError(
                    f"{self.source}: the tensor for {layer_name}/{name} has shape "
                    f"{tuple(value.shape)}, expected {tuple(variable.shape)}; the file "
                    "holds another size or variant of the model")
            variable.assign(value.astype(variable.dtype))
            self.assigned.add(variable.path)

    def finish(self) -> None:
        """Fails with one line if anything is left over on either side."""
        if self.missing:
            raise ConversionError(
                f"{self.source} lacks {len(self.missing)} tensor(s) the model needs: "
                f"{_names(self.missing)}; is it the right file for this --from?")
        extra = set(self.tensors) - self.used - self.skipped
        if extra:
            raise ConversionError(
                f"{self.source} has {len(extra)} tensor(s) this model does not use: "
                f"{_names(extra)}; is it the right file for this --from?")
        unset = [v.path for v in self.model.weights if v.path not in self.assigned]
        if unset:
            raise RuntimeError(f"converter left weights unset: {_names(unset)}")


def conv_kernel(weight):
    """PyTorch Conv2d (out, in, h, w) -> (h, w, in, out); Conv1d (out, in,
    w) -> (w, in, out)."""
    if weight is None:
        return None
    if weight.ndim == 4:
        return weight.transpose(2, 3, 1, 0)
    if weight.ndim == 3:
        return weight.transpose(2, 1, 0)
    raise ConversionError(f"expected a convolution kernel of rank 3 or 4, got shape "
                          f"{weight.shape}")


def dense_kernel(weight):
    """PyTorch Linear (out, in) -> Keras Dense (in, out)."""
    return None if weight is None else weight.T


def batch_norm(weights: WeightMap, layer_name: str, prefix: str) -> None:
    """PyTorch BatchNorm{1,2}d `prefix.{weight,bias,running_mean,running_var}`
    -> our BatchNormalization `layer_name`."""
    weights.set_layer(layer_name, gamma=weights.take(f"{prefix}.weight"),
                      beta=weights.take(f"{prefix}.bias"),
                      moving_mean=weights.take(f"{prefix}.running_mean"),
                      moving_variance=weights.take(f"{prefix}.running_var"))
    weights.skip(f"{prefix}.num_batches_tracked")  # a step counter, not a weight


def layer_norm(weights: WeightMap, layer_name: str, prefix: str) -> None:
    """PyTorch LayerNorm `prefix.{weight,bias}` -> gamma, beta."""
    weights.set_layer(layer_name, gamma=weights.take(f"{prefix}.weight"),
                      beta=weights.take(f"{prefix}.bias"))


def dense(weights: WeightMap, layer_name: str, prefix: str, bias=True) -> None:
    """PyTorch Linear `prefix.{weight,bias}` -> Dense kernel, bias."""
    values = {"kernel": dense_kernel(weights.take(f"{prefix}.weight"))}
    if bias:
        values["bias"] = weights.take(f"{prefix}.bias")
    weights.set_layer(layer_name, **values)


def conv(weights: WeightMap, layer_name: str, prefix: str) -> None:
    """PyTorch Conv{1,2}d `prefix.{weight,bias}` -> Conv kernel, bias."""
    weights.set_layer(layer_name, kernel=conv_kernel(weights.take(f"{prefix}.weight")),
                      bias=weights.take(f"{prefix}.bias"))


def conv_bn(weights: WeightMap, ours: str, theirs: str) -> None:
    """A convolution and its batch norm: `theirs`.conv / .bn -> `ours`_conv / _bn."""
    conv(weights, f"{ours}_conv", f"{theirs}.conv")
    batch_norm(weights, f"{ours}_bn", f"{theirs}.bn")


def res_block(weights: WeightMap, ours: str, theirs: str, shortcut: bool = True) -> None:
    """A residual block: `theirs`.conv_1 / bn_1 / conv_2 / bn_2 (and, with
    `shortcut`, conv_3 / bn_3) -> `ours`_conv1 / _bn1 / _conv2 / _bn2 (and
    _shortcut_conv / _shortcut_bn)."""
    parts = [("1", "conv1", "bn1"), ("2", "conv2", "bn2")]
    if shortcut:
        parts.append(("3", "shortcut_conv", "shortcut_bn"))
    for number, conv_name, norm_name in parts:
        conv(weights, f"{ours}_{conv_name}", f"{theirs}.conv_{number}")
        batch_norm(weights, f"{ours}_{norm_name}", f"{theirs}.bn_{number}")


def gru(weights: WeightMap, layer_name: str, prefix: str, index: int = 0) -> None:
    """Layer `index` of PyTorch GRU `prefix` (weight_ih_l{index} (3u, in),
    weight_hh (3u, u), bias_ih, bias_hh (3u,); gate rows r, z, n) -> our
    GRU `layer_name` (reset_after): kernel (in, 3u), recurrent_kernel (u,
    3u), bias (2, 3u) = input and recurrent bias, gate columns z, r, h."""
    def gates(name):  # rows r, z, n -> z, r, n
        tensor = weights.take(f"{prefix}.{name}_l{index}")
        if tensor is None:
            return None
        if tensor.ndim == 0 or tensor.shape[0] % 3:
            raise ConversionError(f"{weights.source}: '{prefix}.{name}_l{index}' has shape "
                                  f"{tensor.shape}, not three gates")
        r, z, n = np.split(tensor, 3)
        return np.concatenate([z, r, n])

    kernel, recurrent = gates("weight_ih"), gates("weight_hh")
    bias_ih, bias_hh = gates("bias_ih"), gates("bias_hh")
    bias = None
    if bias_ih is not None and bias_hh is not None:
        if bias_ih.shape != bias_hh.shape:
            raise ConversionError(f"{weights.source}: '{prefix}' layer {index}'s biases have "
                                  f"shapes {bias_ih.shape} and {bias_hh.shape}")
        bias = np.stack([bias_ih, bias_hh])
    weights.set_layer(layer_name, **{"gru_cell/kernel": dense_kernel(kernel),
                                     "gru_cell/recurrent_kernel": dense_kernel(recurrent),
                                     "gru_cell/bias": bias})


def heads(weight, num_heads: int):
    """Linear (heads * head_dim, dim) -> our per-head kernel (dim, heads,
    head_dim): output unit h * head_dim + j is head h, dimension j (the
    '(h d)' split of both originals)."""
    if weight is None:
        return None
    return weight.T.reshape(weight.shape[1], num_heads, -1)


def heads_bias(bias, num_heads: int):
    return None if bias is None else bias.reshape(num_heads, -1)


def heads_out(weight, num_heads: int):
    """Linear (dim, heads * head_dim) -> our output kernel (heads, head_dim, dim)."""
    if weight is None:
        return None
    return weight.T.reshape(num_heads, -1, weight.shape[0])


def shape(state: dict, key: str, ndim: int, source: str = "the file") -> tuple:
    """The shape of tensor `key`, which must have `ndim` dimensions."""
    tensor = state.get(key)
    if tensor is None or tensor.ndim != ndim:
        raise ConversionError(f"{source}: '{key}' is not a tensor of {ndim} dimensions")
    return tuple(int(n) for n in tensor.shape)


def read_torch_file(path: str) -> dict:
    """The tensors of a PyTorch weights file as numpy arrays: a state dict,
    or a checkpoint dict holding one under `state_dict`. Read without
    PyTorch (`torch_checkpoint`): the pickle may name only tensors,
    containers, numbers and strings; nothing in it is run. The `module.`
    prefix of a model saved from DataParallel is removed."""
    from tagger.convert import torch_checkpoint

    state = torch_checkpoint.read_state_dict(path)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state
