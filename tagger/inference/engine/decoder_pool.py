"""How many decoder threads tag.py runs beside the model: sized from the
rates measured while it tags (`--workers auto`, the default).

`DecoderRates` tallies, as the pipeline runs, the windows the model scored
and the seconds spent inside the predictor (its rate, windows per second;
the first call, which may trace or compile, is left out), and the windows
the decoder threads produced and the seconds they spent producing them
(per thread: time blocked on the full queue is not counted, so it is the
rate one thread delivers when it has somewhere to put its windows; it
includes waiting for the disk and for a core). Windows are the unit on both
sides, so an overlapping `--hop` weighs on both alike.

`decoder_threads(model_rate, decode_rate, cores)` is the number of threads
whose combined rate exceeds the model's by `HEADROOM`, within the cores
this process may use. The pipeline starts `AUTO_START` threads (one file's
disk stall hides behind another's, as before) and, every `CHECK_SECONDS`,
starts more when the measured rates ask for them; it never stops one (a
thread that is not needed waits on the full queue and costs nothing).

Why threads and not processes: decoding is libsndfile/mpg123 (through
cffi) and soxr, which release the GIL; the Python and numpy around them
(slicing windows, the finite check, the queue) take a small share of the
decoding time and hold the GIL for at most that, so threads scale to
several decoders, and the windows reach
the model without pickling or copies between processes. A model fast
enough to need more would need decoding in processes.

What sizing cannot do: when the model already uses every core (XNNPACK
and TensorFlow do), decoding takes core time from it whatever the pool's
size. With a model rate R_m on all `cores` and one thread's decode rate
R_d, end to end is at most 1 / (1 + R_m / (cores * R_d)) of the model's
own rate: bench/bench_tag.py prints this ceiling beside the measured
ratio. Where the decoders keep up, the rest is the core time they use.
The pool's size matters where the model leaves cores idle, or where
decoding waits on storage.
"""

from __future__ import annotations

import math
import threading

AUTO_START = 2  # decoder threads at the start of an automatically sized pool
HEADROOM = 1.25  # decoding aims this much faster than the model
CHECK_SECONDS = 0.5  # between sizing decisions


def decoder_threads(model_rate: float, decode_rate: float, cores: int,
                    headroom: float = HEADROOM) -> int:
    """Decoder threads that keep up with the model: `ceil(headroom *
    model_rate / decode_rate)`, at least 1 and at most `cores`.

    `model_rate`: windows per second the model scores; `decode_rate`:
    windows per second one decoder thread produces. A rate not measured yet
    (zero) gives 1.
    """
    cores = max(1, int(cores))
    if not model_rate > 0 or not decode_rate > 0:
        return 1
    needed = math.ceil(headroom * model_rate / decode_rate - 1e-9)
    return max(1, min(cores, needed))


class DecoderRates:
    """Rates measured by one run of `tagging.tag_files` (thread-safe).

    `model_windows`, `model_seconds`: scored by the predictor, and the
    seconds inside it (its first call excluded); `decoded_windows`,
    `decode_seconds`: produced by the decoder threads, and the seconds they
    spent decoding (summed over threads); `threads`: decoder threads
    started.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.model_windows = 0
        self.model_seconds = 0.0
        self.decoded_windows = 0
        self.decode_seconds = 0.0
        self.threads = 0

    def model(self, windows: int, seconds: float) -> None:
        self.model_windows += windows  # the caller's thread only
        self.model_seconds += seconds

    def decoded(self, windows: int, seconds: float) -> None:
        with self._lock:
            self.decoded_windows += windows
            self.decode_seconds += seconds

    @property
    def model_rate(self) -> float:
        """Windows per second inside the predictor; 0 until measured."""
        return self.model_windows / self.model_seconds if self.model_seconds > 0 else 0.0

    @property
    def decode_rate(self) -> float:
        """Windows per second of one decoder thread; 0 until measured."""
        with self._lock:
            windows, seconds = self.decoded_windows, self.decode_seconds
        return windows / seconds if seconds > 0 else 0.0
