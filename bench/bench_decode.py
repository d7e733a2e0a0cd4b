"""Decoding the formats of a music library: libsndfile against FFmpeg
(PyAV), decoding alone and with resampling to 16 kHz and to 22050 Hz, in
seconds of audio per second of one core.

    python bench/bench_decode.py [--seconds 120] [--source FILE] [--repeats 3]

Encodes `--seconds` of music (the start of `--source`, a recording in any
format read here, else a song of the synthetic generator's music) at
44.1 kHz stereo as MP3 (LAME, through libsndfile), Ogg Vorbis
(libvorbis), FLAC and M4A (AAC, FFmpeg's encoder), and times each reader
that opens each file (`tagger.audio`'s two decoders, on one thread):
decoding to float32 alone, and decoding, mixing to mono and resampling
with soxr's HQ filter, as tag.py and the builders read a file
(`stream_audio`), to 16000 Hz (musicnn) and to 22050 Hz (the sample-level
CNN). Best of `--repeats`, in turns. Then which reader `tagger.audio` opens
each format with, and whether it is the faster one where both can.

Ratio lines: `decode_<format>_<reader>_<rate>` (x real time per core; rate
`native` for decoding alone) for every format and reader that can read
it, and `decode_faster_reader_used` (the lowest, over the formats, of
the chosen reader's decode-and-resample speed over the faster reader's at
16 kHz; 1: the faster one, or within noise of it, is used everywhere).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from common import synthetic_song

FORMATS = ("mp3", "ogg", "flac", "m4a")
RATES = (16000, 22050)
SOURCE_RATE = 44100


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--source", default=None,
                   help="a recording to encode (default: a synthetic song)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work-dir", default=None)
    return p.parse_args()


def source_audio(path, seconds):
    """(samples, 2) float32 at SOURCE_RATE: the first `seconds` of `path`,
    or a synthetic song."""
    import numpy as np
    import soxr

    if path is None:
        return synthetic_song(seconds, 0, SOURCE_RATE)
    from tagger.audio import open_regular_file, open_source

    fd = open_regular_file(path)
    try:
        with open_source(fd) as source:
            audio = source.read(int(seconds * source.samplerate))
            rate = source.samplerate
    finally:
        os.close(fd)
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    audio = audio[:, :2]
    return soxr.resample(audio, rate, SOURCE_RATE).astype(np.float32)


def encode(audio, folder):
    """{format: path} of `audio` encoded in each of FORMATS."""
    import av
    import numpy as np
    import soundfile as sf

    paths = {fmt: os.path.join(folder, f"music.{fmt}") for fmt in FORMATS}
    for fmt, (container, subtype) in {"mp3": ("MP3", "MPEG_LAYER_III"),
                                      "ogg": ("OGG", "VORBIS"),
                                      "flac": ("FLAC", "PCM_16")}.items():
        # in blocks: libsndfile's Vorbis encoder crashes on a two-minute write
        with sf.SoundFile(paths[fmt], "w", SOURCE_RATE, 2, subtype, format=container) as out:
            for start in range(0, len(audio), SOURCE_RATE):
                out.write(audio[start:start + SOURCE_RATE])
    planar = np.ascontiguousarray(audio.T)  # (channels, samples)
    with av.open(paths["m4a"], "w", format="ipod") as container:
        stream = container.add_stream("aac", rate=SOURCE_RATE, layout="stereo")
        for start in range(0, planar.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(planar[:, start:start + 1024]), format="fltp",
                layout="stereo")
            frame.sample_rate = SOURCE_RATE
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return paths


def opened(path, reader):
    """An open decoder of `reader` ("libsndfile" or "FFmpeg") on `path`,
    or None where it cannot open it."""
    import soundfile

    from tagger.audio import READERS

    try:
        return READERS[reader](path)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, OSError):
        return None
    except Exception as error:  # PyAV's and our own reasons
        if type(error).__module__.startswith(("av", "tagger")):
            return None
        raise


def decode_seconds(path, reader, rate):
    """Seconds to decode `path` with `reader`, mixed to mono and resampled
    to `rate` as `stream_audio` does (None: decoding alone)."""
    import numpy as np
    import soxr

    from tagger.audio import mono_mix

    start = time.perf_counter()
    with opened(path, reader) as source:
        stream = (soxr.ResampleStream(source.samplerate, rate, 1, dtype="float32",
                                      quality="HQ") if rate else None)
        frames = 30 * source.samplerate
        while len(block := source.read(frames)):
            if stream is not None:
                stream.resample_chunk(mono_mix(block))
        if stream is not None:
            stream.resample_chunk(np.zeros(0, np.float32), last=True)
    return time.perf_counter() - start


def main():
    args = parse_args()
    from tagger.audio import READERS, file_info

    work = args.work_dir or tempfile.mkdtemp(prefix="bench_decode_")
    os.makedirs(work, exist_ok=True)
    audio = source_audio(args.source, args.seconds)
    seconds = len(audio) / SOURCE_RATE
    paths = encode(audio, work)
    print(f"{seconds:.0f} s of {'synthetic music' if args.source is None else args.source} "
          f"at {SOURCE_RATE} Hz stereo; " + ", ".join(
              f"{fmt} {os.path.getsize(p) / seconds / 125:.0f} kbit/s"
              for fmt, p in paths.items())
          + f"; one thread, best of {args.repeats}; load average {os.getloadavg()[0]:.1f}")
    cases = [(fmt, reader, rate) for fmt in FORMATS for reader in READERS
             for rate in (None, *RATES)]
    readable = {(fmt, reader): opened(paths[fmt], reader) is not None
                for fmt in FORMATS for reader in READERS}
    best = {case: float("inf") for case in cases if readable[case[:2]]}
    for _ in range(args.repeats):
        for case in best:
            fmt, reader, rate = case
            best[case] = min(best[case], decode_seconds(paths[fmt], reader, rate))
    lowest = 1.0
    for fmt in FORMATS:
        used = file_info(paths[fmt]).decoder
        speeds = {}
        for reader in READERS:
            if not readable[(fmt, reader)]:
                print(f"{fmt:5s} {reader:10s} cannot read it")
                continue
            figures = {rate: seconds / best[(fmt, reader, rate)] for rate in (None, *RATES)}
            speeds[reader] = figures[RATES[0]]
            print(f"{fmt:5s} {reader:10s} decode {figures[None]:7.0f}x  + resample to "
                  + "  ".join(f"{rate} Hz {figures[rate]:6.0f}x" for rate in RATES)
                  + ("   (tagger.audio's reader)" if reader == used else ""))
            for rate, value in figures.items():
                print(f"ratio decode_{fmt}_{reader.lower()}_{rate or 'native'} {value:.0f}")
        lowest = min(lowest, speeds[used] / max(speeds.values()))
    print(f"ratio decode_faster_reader_used {lowest:.3f}")


if __name__ == "__main__":
    main()
