"""bench_accelerator.py's model measurements under Keras's JAX backend, for
a machine whose GPU JAX can drive but TensorFlow cannot (no TensorFlow, or
none built for its CUDA).

The same two families at the same bench size as the TensorFlow run, built
by the same factories, train in float32 and under the `mixed_bfloat16`
policy of `train.py --mixed-precision bfloat16`: one jitted step of the
model's stateless call, its gradient and the optimiser's stateless update
(Keras's pattern for a JAX training loop), the steps run back to back and
the last waited for, as the TensorFlow run does. FLOPs of one forward pass
are XLA's count of the lowered inference call (2 per multiply-add); a
training step counts as three forward passes, as elsewhere. `train.py --quick` needs
TensorFlow and is not run. `bench_accelerator.jax_run` sets KERAS_BACKEND=jax
before Keras is first imported.
"""

from __future__ import annotations

import time

from bench_models import bench_model, random_batch
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


def forward_flops(model, x) -> float:
    """XLA's FLOP count of one inference call of `model` on `x`, compiled
    for the CPU (a GPU's program hands its convolutions to cuDNN, uncounted,
    and gives no count before compiling)."""
    import jax

    def forward(trainable, non_trainable, batch):
        return model.stateless_call(trainable, non_trainable, batch, training=False)[0]

    arguments = jax.device_put(([v.value for v in model.trainable_variables],
                                [v.value for v in model.non_trainable_variables], x),
                               jax.devices("cpu")[0])
    cost = jax.jit(forward).lower(*arguments).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):  # one entry per device in earlier JAX versions
        cost = cost[0]
    return float(cost["flops"])


def train_step(model, optimizer):
    """A jitted stateless training step, (loss, trainable, non-trainable,
    optimiser variables) from the same and a batch (x, y): binary
    cross-entropy, as train.py's; the state's buffers are donated."""
    import jax
    import keras

    loss_of = keras.losses.BinaryCrossentropy()

    def loss_and_state(trainable, non_trainable, x, y):
        scores, non_trainable = model.stateless_call(trainable, non_trainable, x,
                                                     training=True)
        return loss_of(y, scores), non_trainable

    gradient = jax.value_and_grad(loss_and_state, has_aux=True)

    def step(trainable, non_trainable, optimizer_variables, x, y):
        (loss, non_trainable), grads = gradient(trainable, non_trainable, x, y)
        trainable, optimizer_variables = optimizer.stateless_apply(
            optimizer_variables, grads, trainable)
        return loss, trainable, non_trainable, optimizer_variables

    return jax.jit(step, donate_argnums=(0, 1, 2))


def train_rate(family: str, case, steps: int, policy: str) -> tuple[float, float]:
    """(training steps/s, forward FLOPs per batch) of `family`'s `case`,
    its layers under the Keras dtype `policy`; the steps run back to back,
    the last one waited for."""
    import jax
    import keras
    import numpy as np

    model = bench_model(family, case, policy)
    x, y = jax.device_put(random_batch(family, case))
    flops = forward_flops(model, x)
    optimizer = keras.optimizers.SGD(1e-3, momentum=0.9, nesterov=True)
    optimizer.build(model.trainable_variables)
    state = ([v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])
    step = train_step(model, optimizer)
    loss, *state = step(*state, x, y)  # trace and compile
    loss.block_until_ready()
    start = time.perf_counter()
    for _ in range(steps):
        loss, *state = step(*state, x, y)
    if not np.isfinite(float(loss)):
        raise FloatingPointError(f"{family} under {policy}: the loss is {float(loss)}")
    return steps / (time.perf_counter() - start), flops


def measure_family(family: str, case, steps: int, peaks: dict) -> dict:
    """Prints `family`'s steps/s and MFU in each of PRECISIONS and the
    bfloat16 speedup; {config: steps/s}."""
    rates = {}
    for config, policy in PRECISIONS:
        rates[config], flops = train_rate(family, case, steps, policy)
        mfu = rates[config] * TRAIN_FORWARD_RATIO * flops / peaks[policy]
        print(f"{case.label} {config:4s} batch {case.batch_size:3d} (JAX): train "
              f"{rates[config]:8.2f} steps/s, {flops / 1e9:.2f} GFLOP per forward batch, "
              f"MFU {mfu:.3f} against the {policy.removeprefix('mixed_')} peak", flush=True)
        print(f"ratio gpu_jax_train_steps_per_s_{config}_{family} {rates[config]:.3f}")
        print(f"ratio gpu_jax_train_mfu_{config}_{family} {mfu:.4f}", flush=True)
    print(f"ratio gpu_jax_train_bf16_speedup_{family} {rates['bf16'] / rates['f32']:.3f}",
          flush=True)
    return rates
