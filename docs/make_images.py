"""Draws the README's picture, docs/images/taggram.png, with tag.py's --taggram.

    python docs/make_images.py MODEL AUDIO [AUDIO ...] [--out docs/images/taggram.png]

Several AUDIO files are joined end to end into one WAV first (mono, at the
first file's sample rate), so the taggram shows the tags change over time.
The README's picture was made from the demo's model (`python demo.py`) and
three test-split clips of its synthetic dataset (classical piano, rock,
techno):

    python docs/make_images.py demo_output/runs/samplecnn-rese-multi/model.keras \\
        demo_output/dataset/mp3/d/the_songs-winter-09-wild_rooms-88-117.mp3 \\
        demo_output/dataset/mp3/e/river_lantern-north-10-rooms-117-146.mp3 \\
        demo_output/dataset/mp3/f/wendy_sato-paper-13-fire_ocean-0-29.mp3
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import soundfile
import soxr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOINED_NAME = "synthetic_clips_joined.wav"  # the picture's title


def join_audio(paths, out_path):
    """Writes the files end to end as one mono WAV; returns its length (s)."""
    parts, rate = [], None
    for path in paths:
        audio, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)  # (samples,)
        rate = rate or file_rate
        if file_rate != rate:
            audio = soxr.resample(audio, file_rate, rate)
        parts.append(audio)
    joined = np.concatenate(parts)
    soundfile.write(out_path, joined, rate)
    return len(joined) / rate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", metavar="MODEL",
                        help="a .keras or .hdf5 model written by train.py")
    parser.add_argument("audio", metavar="AUDIO", nargs="+", help="audio files, joined in order")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images", "taggram.png"),
                        help="the PNG to write (default: docs/images/taggram.png)")
    args = parser.parse_args(argv)
    for path in [args.model] + args.audio:
        if not os.path.isfile(path):
            parser.exit(2, f"make_images.py: {path} is not a file; expected a model and "
                           "audio files (run `python demo.py` for a model and clips)\n")
    with tempfile.TemporaryDirectory() as work:
        audio = os.path.join(work, JOINED_NAME)
        seconds = join_audio(args.audio, audio)
        taggrams = os.path.join(work, "taggrams")
        subprocess.run([sys.executable, "-m", "tagger.commands.tag", args.model, audio,
                        "--taggram", taggrams, "--no-progress"], check=True, cwd=ROOT)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        shutil.copyfile(os.path.join(taggrams, JOINED_NAME + ".png"), args.out)
    print(f"wrote {args.out} ({len(args.audio)} files, {seconds:.1f} s)")


if __name__ == "__main__":
    main()
