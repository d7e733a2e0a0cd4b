"""bench_accelerator.py's model measurements under Keras's JAX backend, for
a machine whose GPU JAX can drive but TensorFlow cannot (no TensorFlow, or
none built for its CUDA); bench_models.py --backend jax's training steps.

The same two families at the same bench size as the TensorFlow run, built
by the same factories, train in float32 and under the `mixed_bfloat16`
policy of `train.py --mixed-precision bfloat16`, through train.py
--backend jax's step (`training.backend_jax`: the model's stateless call,
its gradient and the optimiser's stateless update, jitted, its state
donated): the steps run back to back and the last waited for, as the
TensorFlow run does. FLOPs of one forward pass are XLA's count of the
lowered inference call (2 per multiply-add); a training step counts as
three forward passes, as elsewhere. `train.py --quick` needs TensorFlow and
is not run. `bench_accelerator.jax_run` sets KERAS_BACKEND=jax before Keras
is first imported.
"""

from __future__ import annotations

import time

from common import bench_model, random_batch
from flops import TRAIN_FORWARD_RATIO

PRECISIONS = (("f32", "float32"), ("bf16", "mixed_bfloat16"))  # config, Keras dtype policy


def describe_devices(nvidia_smi_line: str | None) -> None:
    """Prints the device JAX computes on and the versions."""
    import jax
    import keras

    device = jax.devices()[0]
    print(f"GPU: {device.device_kind} through JAX ({len(jax.devices())} visible; the first "
          f"runs the work)" + (f"; nvidia-smi: {nvidia_smi_line}" if nvidia_smi_line else "")
          if device.platform == "gpu" else
          f"JAX computes on the {device.platform.upper()}: no GPU visible to JAX")
    print(f"Keras {keras.__version__} on JAX {jax.__version__} (backend "
          f"{keras.backend.backend()}); TensorFlow is not used", flush=True)


def matmul_peaks(sizes, repeats: int = 10) -> dict:
    """{Keras dtype policy: FLOP/s}: the best of `repeats` square products of
    each size in float32 (JAX's default precision: TF32 on NVIDIA GPUs from
    Ampere on) and in bfloat16, each waited for."""
    import jax
    import jax.numpy as jnp

    product = jax.jit(jnp.matmul)
    peaks = {}
    for policy, dtype in (("float32", jnp.float32), ("mixed_bfloat16", jnp.bfloat16)):
        best_rate = 0.0
        for size in sizes:
            a = jax.random.normal(jax.random.key(1), (size, size), dtype)
            b = jax.random.normal(jax.random.key(2), (size, size), dtype)
            product(a, b).block_until_ready()  # compile and warm up
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                product(a, b).block_until_ready()
                best = min(best, time.perf_counter() - start)
            best_rate = max(best_rate, 2.0 * size ** 3 / best)
        peaks[policy] = best_rate
    return peaks


def cpu_cost(function, model, *inputs) -> dict:
    """XLA's cost analysis ("flops", "bytes accessed", ...) of
    `function(trainable, non_trainable, *inputs)` over `model`'s variables,
    jitted and compiled for the CPU (a GPU's program hands its convolutions
    to cuDNN, uncounted, and gives no count before compiling)."""
    import jax

    arguments = jax.device_put(([v.value for v in model.trainable_variables],
                                [v.value for v in model.non_trainable_variables], *inputs),
                               jax.devices("cpu")[0])
    cost = jax.jit(function).lower(*arguments).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):  # one entry per device in earlier JAX versions
        cost = cost[0]
    return cost


def forward_flops(model, x) -> float:
    """XLA's FLOP count of one inference call of `model` on `x` (`cpu_cost`)."""
    def forward(trainable, non_trainable, batch):
        return model.stateless_call(trainable, non_trainable, batch, training=False)[0]

    return float(cpu_cost(forward, model, x)["flops"])


def steps_per_second(model, batch, steps: int) -> float:
    """Training steps/s of `model` on the NumPy `batch` (x, y) through
    train.py --backend jax's step (`JaxBackend.train_function` on one
    device: BCE, SGD with Nesterov momentum as bench_models.py's
    TensorFlow step, each batch put on the device by the run's input
    thread): a first step that compiles, then `steps` steps back to back,
    the last waited for."""
    import itertools

    import keras
    import numpy as np

    from tagger.training.backend_jax import JaxBackend

    optimizer = keras.optimizers.SGD(1e-3, momentum=0.9, nesterov=True)
    train = JaxBackend("default").train_function(model, optimizer, len(batch[0]))
    batches = itertools.repeat(batch)
    float(train(batches, 1))  # trace and compile, waited for
    start = time.perf_counter()
    loss = float(train(batches, steps))  # waits for the last step
    seconds = time.perf_counter() - start
    train.end_epoch()
    if not np.isfinite(loss):
        raise FloatingPointError(f"{model.name}'s timed training steps summed to a loss of "
                                 f"{loss}; expected a finite one")
    return steps / seconds


def train_rate(family: str, case, steps: int, policy: str) -> tuple[float, float]:
    """(training steps/s, forward FLOPs per batch) of `family`'s `case`,
    its layers under the Keras dtype `policy` (`steps_per_second`)."""
    model = bench_model(family, case, policy)
    x, y = random_batch(family, case)
    flops = forward_flops(model, x)
    return steps_per_second(model, (x, y), steps), flops


def measure_family(family: str, case, steps: int, peaks: dict, configs=None) -> dict:
    """Prints `family`'s steps/s and MFU in each of PRECISIONS (or those of
    them `configs` names) and the bfloat16 speedup; {config: steps/s}."""
    rates = {}
    for config, policy in PRECISIONS:
        if configs is not None and config not in configs:
            continue
        rates[config], flops = train_rate(family, case, steps, policy)
        mfu = rates[config] * TRAIN_FORWARD_RATIO * flops / peaks[policy]
        print(f"{case.label} {config:4s} batch {case.batch_size:3d} (JAX): train "
              f"{rates[config]:8.2f} steps/s, {flops / 1e9:.2f} GFLOP per forward batch, "
              f"MFU {mfu:.3f} against the {policy.removeprefix('mixed_')} peak", flush=True)
        print(f"ratio gpu_jax_train_steps_per_s_{config}_{family} {rates[config]:.3f}")
        print(f"ratio gpu_jax_train_mfu_{config}_{family} {mfu:.4f}", flush=True)
    if {"bf16", "f32"} <= set(rates):
        print(f"ratio gpu_jax_train_bf16_speedup_{family} {rates['bf16'] / rates['f32']:.3f}",
              flush=True)
    return rates


def train_step_cost(model, batch) -> tuple[float, float]:
    """(FLOPs, bytes accessed) of one training step's gradient of `model` on
    the NumPy `batch` (x, y): the stateless call in training mode, the mean
    BCE and its gradient, as XLA's cost analysis counts them after fusion
    (`cpu_cost`; the optimiser's update, a few reads and writes of each
    weight, is left out)."""
    import jax
    import keras

    def loss(trainable, non_trainable, x, y):
        scores, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return keras.ops.mean(keras.losses.binary_crossentropy(y, scores)), non_trainable

    cost = cpu_cost(jax.value_and_grad(loss, has_aux=True), model, *batch)
    return float(cost["flops"]), float(cost["bytes accessed"])
