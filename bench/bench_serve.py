"""tagger-serve under load: does batching over requests keep tag.py's speed?

    python bench/bench_serve.py [--clients 16] [--seconds 30] [--rounds 3]
                                [--clip-seconds 10] [--clips 24] [--max-queue 32]
                                [--overload-clients 64] [--overload-seconds 10]
                                [--model PATH] [--width 1.0]

Makes (once) synthetic MagnaTagATune-layout MP3 clips of `--clip-seconds`
and saves an untrained paper-size SE+multi sample-level CNN (or serves
`--model`), then:

1. `python -m tagger.serve` on 127.0.0.1 (a free port);
2. `--rounds` rounds of `--clients` concurrent clients (threads, one
   keep-alive connection each) posting the clips as raw bodies, `--seconds`
   in all: throughput, p50/p99 latency, errors (there must be none: the
   clients stay within --max-queue). Before and after each round, tag.py's
   pipeline runs on the same clips in this process (`tag_files` with
   tag.py's decoder threads, batches of `--max-batch` across files) for
   `--baseline-seconds`; each round's throughput is divided by the mean of
   the two runs around it (load from elsewhere on the machine weighs on
   both sides of a pair alike), and the median of these ratios is printed;
3. `--overload-clients` clients, more than --max-queue, for
   `--overload-seconds`: the requests above the bound get 503 with
   Retry-After (each client waits min(Retry-After, 0.25 s) and tries again)
   and nothing else fails;
4. the server's peak resident memory (VmHWM), then the server is stopped
   with SIGINT.

Every loop is bounded in time and count and the server only listens on
127.0.0.1. Prints `ratio serve_tag_throughput VALUE`: served clips per
second with `--clients` clients over tag.py's on the same clips (goal >=
0.8: HTTP, uploads and batching over requests cost at most a fifth). The
machine may be shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from common import ratio_line, saved_untrained_samplecnn, synthetic_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = 300  # seconds for the server to load its model and listen
REQUEST_TIMEOUT = 120  # seconds for one request
BACKOFF = 0.25  # the longest a client waits after a 503


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", default=None, help="keep the clips and the model here "
                                                    "(default: a temp dir)")
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--clip-seconds", type=float, default=10.0)
    p.add_argument("--model", default=None, help="a saved tagger instead of the untrained one")
    p.add_argument("--block", default="se")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=30.0,
                   help="of load within the queue bound, in all (split over --rounds)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-queue", type=int, default=32)
    p.add_argument("--overload-clients", type=int, default=64)
    p.add_argument("--overload-seconds", type=float, default=10.0)
    p.add_argument("--max-requests", type=int, default=100_000,
                   help="stop a phase after this many requests in all")
    p.add_argument("--baseline-seconds", type=float, default=8.0,
                   help="how long tag.py's pipeline is measured, before and after each "
                        "served round")
    return p.parse_args(argv)


# -- the server -------------------------------------------------------------------


class Server:
    """`python -m tagger.serve MODEL --port 0 ...` in its own process, started
    at once; `url` waits until it listens (read from its stderr, at most
    `timeout` seconds); `stop()` sends SIGINT."""

    def __init__(self, models, *flags, env=None, timeout: float = START_TIMEOUT):
        command = [sys.executable, "-m", "tagger.serve", *models, "--port", "0",
                   "--no-progress", *map(str, flags)]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, **(env or {})})
        self.lines = []
        self.timeout = timeout
        self.started = time.perf_counter()
        self.start_seconds = None
        self._url = None
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            match = re.search(r"serving on (http://\S+/)", line)
            if match and self._url is None:
                self.start_seconds = time.perf_counter() - self.started
                self._url = match.group(1)
                self._ready.set()
        self._ready.set()  # the process ended

    @property
    def url(self) -> str:
        self._ready.wait(max(0.0, self.timeout - (time.perf_counter() - self.started)))
        if self._url is None:
            self.stop()
            raise RuntimeError("the server did not start:\n" + "\n".join(self.lines[-20:]))
        return self._url

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), MB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# -- the clients -------------------------------------------------------------------


@dataclasses.dataclass
class Load:
    """What one phase of clients saw."""

    clients: int
    seconds: float  # wall time from the first request to the last answer
    latencies: list  # seconds, of the 200s
    statuses: collections.Counter
    errors: list  # (what, detail) of failures other than 503
    retry_after: list  # the Retry-After values of the 503s
    audio_seconds: float  # seconds of audio in the 200s

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def refused(self) -> int:
        return self.statuses.get(503, 0)

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def latency(self, q: float) -> float:
        import numpy as np

        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


def run_clients(url: str, bodies, clients: int, seconds: float, max_requests: int = 100_000,
                content_type: str = "audio/mpeg", query: str = "") -> Load:
    """`clients` threads post `bodies` (bytes, taken in turn) to url + v1/tag
    for `seconds` (each its first request whenever it starts: a busy machine
    measures fewer requests, never none), at most `max_requests` in all; a
    client waits min(Retry-After, BACKOFF) after a 503. Returns what they saw."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path + "v1/tag" + query
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    sent = [0]
    seen = dict(latencies=[], statuses=collections.Counter(), errors=[], retry=[], audio=0.0,
                first=None, last=None)

    def take(first: bool) -> int | None:
        with lock:
            if sent[0] >= max_requests or (time.monotonic() >= deadline and not first):
                return None
            sent[0] += 1
            return sent[0]

    def post(conn, body):
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response, response.read()

    def client():
        conn, first = None, True
        while (number := take(first)) is not None:
            first = False
            body = bodies[number % len(bodies)]
            start = time.perf_counter()
            for attempt in (1, 2):  # a keep-alive connection the server closed: once more
                fresh = conn is None
                if fresh:
                    conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                                      timeout=REQUEST_TIMEOUT)
                try:
                    response, data = post(conn, body)
                    break
                except (OSError, http.client.HTTPException) as error:
                    conn.close()
                    conn = None
                    if fresh or attempt == 2:
                        with lock:
                            seen["errors"].append(("connection", repr(error)))
                        response = None
                        break
            end = time.perf_counter()
            if response is None:
                continue
            with lock:
                seen["first"] = min(seen["first"] or start, start)
                seen["last"] = max(seen["last"] or end, end)
                seen["statuses"][response.status] += 1
                if response.status == 200:
                    seen["latencies"].append(end - start)
                    seen["audio"] += _duration(data)
                elif response.status == 503:
                    seen["retry"].append(response.getheader("Retry-After"))
                else:
                    seen["errors"].append((response.status, data[:200]))
            if response.will_close:
                conn.close()
                conn = None
            if response.status == 503:
                time.sleep(min(BACKOFF, float(response.getheader("Retry-After") or 1)))
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + REQUEST_TIMEOUT + 10)
    wall = (seen["last"] - seen["first"]) if seen["first"] is not None else 0.0
    return Load(clients, wall, seen["latencies"], seen["statuses"], seen["errors"],
                seen["retry"], seen["audio"])


def health(url: str) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(url + "healthz", timeout=30) as response:
        return json.loads(response.read())


def _duration(data: bytes) -> float:
    import json

    try:
        return float(json.loads(data)["duration"])
    except (ValueError, KeyError, TypeError):
        return 0.0


def describe(load: Load, bound: int) -> str:
    statuses = ", ".join(f"{count} x {status}" for status, count in sorted(
        load.statuses.items()))
    return (f"{load.clients} clients (--max-queue {bound}), {load.seconds:.1f} s: {statuses}; "
            f"{load.per_second:.2f} requests/s ({load.audio_seconds / max(load.seconds, 1e-9):.0f}"
            f" s of audio/s); latency p50 {load.latency(50):.2f} s, p99 {load.latency(99):.2f} s;"
            f" errors {len(load.errors)}")


# -- tag.py's pipeline ---------------------------------------------------------------


def tag_py_rate(predictor, files, batch_size: int, seconds: float = 15.0,
                max_passes: int = 50) -> float:
    """Clips per second through tag_files as tag.py runs it (its default
    decoder threads, batches across files): passes of 4 x `files` in one
    call each, until `seconds` have passed (at least one, at most
    `max_passes`)."""
    from tagger.inference.engine.tagging import tag_files

    paths = list(files) * 4
    start, done = time.perf_counter(), 0
    for _ in range(max_passes):
        done += sum(r.ok for r in tag_files(predictor, paths, batch_size=batch_size))
        if time.perf_counter() - start >= seconds:
            break
    return done / (time.perf_counter() - start)


def usable_clips(folder: str, rate: int, window: int) -> list:
    """The clips of the synthetic set that decode to at least one window
    (the generator's broken files left out), in a fixed order."""
    from tagger.audio import AudioDecodeError, audio_windows
    from tagger.inference.inputs import find_audio
    from tagger.runtime import native_stderr_silenced

    usable = []
    with native_stderr_silenced():
        for path in sorted(find_audio([folder], recursive=True).files):
            try:
                if sum(1 for _ in audio_windows(path, rate, window)):
                    usable.append(path)
            except AudioDecodeError:
                pass
    return usable


def main(argv=None):
    args = parse_args(argv)
    from tagger import runtime

    runtime.quiet_tensorflow()
    from tagger.inference.engine.keras import KerasPredictor
    from tagger.models.saved import load_tagger
    from tagger.runtime import native_stderr_silenced

    work = args.work_dir or tempfile.mkdtemp(prefix="bench_serve_")
    clips_dir = synthetic_data(os.path.join(work, f"clips_{args.clip_seconds:g}s"), args.clips,
                               args.clip_seconds)
    model_path = args.model or saved_untrained_samplecnn(
        os.path.join(work, f"samplecnn_{args.block}_{args.width:g}.keras"), args.block,
        args.width)
    model, info = load_tagger(model_path)
    predictor = KerasPredictor(model, info)
    files = usable_clips(clips_dir, predictor.sample_rate, predictor.window_samples)
    bodies = []
    for path in files:
        with open(path, "rb") as f:
            bodies.append(f.read())
    print(f"{len(files)} clips of {args.clip_seconds:g} s (MP3, "
          f"{sum(map(len, bodies)) / len(bodies) / 1e3:.0f} kB each); "
          f"{model.count_params() / 1e6:.1f}M parameters, batches of {args.max_batch}; "
          f"load average {os.getloadavg()[0]:.1f} (other processes share the machine)")

    for size in {args.max_batch, *(range(1, 4))}:  # every batch shape traced
        predictor(predictor_input(predictor, size))
    server = Server([model_path], "--max-queue", args.max_queue, "--max-batch",
                    args.max_batch)
    try:
        print(f"server: {server.url}, ready in {server.start_seconds:.1f} s "
              f"(pid {server.pid})")
        run_clients(server.url, bodies[:2], 2, 2.0, max_requests=4)  # connections warm
        # tag.py, served, tag.py, served, ..., tag.py: each served round is
        # paired with the tag.py runs just before and after it, so load from
        # elsewhere on the machine weighs on both sides of a pair alike
        with native_stderr_silenced():
            baselines = [tag_py_rate(predictor, files, args.max_batch, args.baseline_seconds)]
        rounds, ratios = [], []
        for _ in range(args.rounds):
            rounds.append(run_clients(server.url, bodies, args.clients,
                                      args.seconds / args.rounds, args.max_requests))
            with native_stderr_silenced():
                baselines.append(tag_py_rate(predictor, files, args.max_batch,
                                             args.baseline_seconds))
            ratios.append(rounds[-1].per_second / ((baselines[-2] + baselines[-1]) / 2))
        below = merged(rounds)
        print("tag.py's pipeline: " + ", ".join(f"{b:.2f}" for b in baselines)
              + " clips/s, between the served rounds")
        print("below the bound:", describe(below, args.max_queue)
              + "; per round " + ", ".join(f"{r.per_second:.2f}" for r in rounds)
              + " requests/s")
        over = run_clients(server.url, bodies, args.overload_clients, args.overload_seconds,
                           args.max_requests)
        print("above the bound:", describe(over, args.max_queue)
              + f"; Retry-After {sorted(set(over.retry_after), key=int)[:6]} s")
        for what, detail in (below.errors + over.errors)[:5]:
            print(f"  error: {what}: {detail}")
        peak = peak_rss_mb(server.pid)
        batching = health(server.url)["batching"]
        for name, done in batching.items():
            print(f"batches of model {name}: {done['calls']} calls, "
                  f"{done['windows'] / max(done['calls'], 1):.1f} windows each on average")
    finally:
        code = server.stop()
    print(f"server peak RSS: {peak:.0f} MB; stopped with SIGINT, exit code {code}")
    import numpy as np

    ratio = float(np.median(ratios))
    print(ratio_line(f"served / tag.py throughput, {args.clients} clients", ratio, ">= 0.8")
          + "   per round " + ", ".join(f"{r:.2f}" for r in ratios))
    print(f"ratio serve_tag_throughput {ratio:.3f}")


def merged(loads):
    """One Load of several rounds of the same clients."""
    total = Load(loads[0].clients, 0.0, [], collections.Counter(), [], [], 0.0)
    for load in loads:
        total.seconds += load.seconds
        total.latencies += load.latencies
        total.statuses.update(load.statuses)
        total.errors += load.errors
        total.retry_after += load.retry_after
        total.audio_seconds += load.audio_seconds
    return total


def predictor_input(predictor, size: int):
    import numpy as np

    return np.zeros((size, predictor.window_samples), np.float32)


if __name__ == "__main__":
    main()
