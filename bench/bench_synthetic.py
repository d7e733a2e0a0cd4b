"""How long the synthetic dataset takes to generate, against its floor.

    python bench/bench_synthetic.py [--clips 400] [--seconds 29.1] [--seed 0]

Generates the dataset into a temporary directory (one core), then encodes
one of its clips, decoded in advance, as many times as the dataset has MP3
files: that is the floor, since every file has to be encoded anyway.
Prints both times and their ratio (`ratio synthetic_generate_floor VALUE`).
"""

import argparse
import os
import tempfile
import time

import soundfile as sf
from common import ratio_line

from tagger.datasets.synthetic import SAMPLE_RATE, generate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=29.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = generate(os.path.join(tmp, "data"), args.clips, args.seconds, args.seed)
        total = time.perf_counter() - start

        # re-encode one generated clip (decoded beforehand) as many times
        broken = {b.mp3_path for b in summary.broken}
        with open(summary.csv_path, encoding="utf-8") as f:
            paths = [line.rsplit("\t", 1)[1].strip().strip('"') for line in f.readlines()[1:]]
        sample = next(p for p in paths if p not in broken)
        audio, _ = sf.read(os.path.join(summary.audio_root, sample), dtype="float32")
        encoded = args.clips - len(summary.broken) + 1  # the truncated file is encoded too
        os.makedirs(os.path.join(tmp, "floor"))
        start = time.perf_counter()
        for i in range(encoded):
            sf.write(os.path.join(tmp, "floor", f"{i}.mp3"), audio, SAMPLE_RATE,
                     format="MP3", subtype="MPEG_LAYER_III")
        floor = time.perf_counter() - start

    print(f"generate: {summary.num_clips} clips x {args.seconds:g} s in {total:.1f} s "
          f"({1000 * total / summary.num_clips:.0f} ms/clip)")
    print(f"MP3 encoding alone ({encoded} files): {floor:.1f} s "
          f"({1000 * floor / encoded:.0f} ms/file)")
    print(ratio_line("generation time / MP3 encoding alone", total / floor, "-"))
    print(f"ratio synthetic_generate_floor {total / floor:.3f}")


if __name__ == "__main__":
    main()
