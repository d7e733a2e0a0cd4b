"""Draws the README's picture, docs/images/taggram.png, with tag.py's --taggram.

    python docs/make_images.py MODEL AUDIO [AUDIO ...] [--out docs/images/taggram.png]
        [--name JOINED.wav]

MODEL is a model file or a pretrained name. Several AUDIO files are joined
end to end into one WAV first (mono, at the first file's sample rate,
named --name: the picture's title), so the taggram shows the tags change
over time. The README's picture: MTT_musicnn on three 30 s excerpts of
recorded music from Debian's game soundtracks (GPL-2+, CC BY-SA 3.0; the tests' excerpts,
cut by `tests.checks.debian_music` from `apt-get download nexuiz-music
warzone2100-music asc-music`): Nexuiz's "ninesix", Warzone 2100's menu
music, ASC's "frontiers", from 60 s into each:

    python -c "from tests.checks import debian_music; print(debian_music('excerpts'))"
    python docs/make_images.py MTT_musicnn excerpts/0-nexuiz-music.wav \\
        excerpts/1-warzone2100-music.wav excerpts/2-asc-music.wav \\
        --name ninesix+menu+frontiers.wav
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
JOINED_NAME = "clips_joined.wav"  # the picture's title, unless --name says another


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
                        help="a .keras or .hdf5 model written by train.py, or a pretrained "
                             "name (tagger-pretrained list)")
    parser.add_argument("audio", metavar="AUDIO", nargs="+", help="audio files, joined in order")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images", "taggram.png"),
                        help="the PNG to write (default: docs/images/taggram.png)")
    parser.add_argument("--name", default=JOINED_NAME,
                        help=f"the joined file's name, the picture's title (default: "
                             f"{JOINED_NAME})")
    args = parser.parse_args(argv)
    for path in args.audio:
        if not os.path.isfile(path):
            parser.exit(2, f"make_images.py: {path} is not a file; expected audio files\n")
    with tempfile.TemporaryDirectory() as work:
        audio = os.path.join(work, os.path.basename(args.name))
        seconds = join_audio(args.audio, audio)
        taggrams = os.path.join(work, "taggrams")
        subprocess.run([sys.executable, "-m", "tagger.commands.tag", args.model, audio,
                        "--taggram", taggrams, "--no-progress"], check=True, cwd=ROOT)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        shutil.copyfile(os.path.join(taggrams, os.path.basename(args.name) + ".png"),
                        args.out)
    print(f"wrote {args.out} ({len(args.audio)} files, {seconds:.1f} s)")


if __name__ == "__main__":
    main()
