"""Audio decoding, mono mix-down, resampling and segmentation.

Two decoders, tried in this order on every path (the builders' whole-file
`read_clip`, the streaming `stream_audio` / `audio_windows` of tag.py and
the server, `file_info`):

1. libsndfile (soundfile; 1.2: MP3, Ogg Vorbis/Opus, FLAC, WAV, AIFF, ...):
   fast, and what every record built so far was decoded with;
2. FFmpeg (PyAV, whose wheels carry FFmpeg's own codecs: M4A/MP4 with AAC
   or ALAC, raw AAC, WMA, Matroska/WebM, APE, WavPack, AC-3, ...), for a
   file libsndfile cannot open, and for an MP3 it would cut short
   (`mp3_frames`).

Either gives float32 blocks (frames, channels) at the file's own rate; the
mono mix (the channel mean in float32) and soxr's high-quality resampling
that follow are the same code for both. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import errno
import io
import math
import os
import re
import stat
import typing

import numpy as np
import soundfile
import soxr

from tagger import fileio, mp3_frames
from tagger.config import INT16_SCALE
from tagger.runtime import native_stderr_silenced


class AudioDecodeError(Exception):
    """A file could not be decoded as audio; the message says why."""


class CannotSeekExactly(Exception):
    """A decoder cannot give a span of a file by seeking with the samples
    that decoding from the start gives there; the message says why (the
    caller decodes through instead)."""


class NonFiniteAudioError(AudioDecodeError):
    """The decoded audio holds NaN or infinite samples (a damaged file)."""

    def __init__(self, message: str = "the audio holds NaN or infinite samples"):
        super().__init__(message)


# what libsndfile says of a file it merely cannot identify
_UNIDENTIFIED = ("does not exist or is not a regular file", "Format not recognised")


def decode_reason(error: AudioDecodeError) -> str:
    """Why a file the user named could not be decoded: the error's message,
    where libsndfile's misleading "does not exist" or "Format not
    recognised" for a file it cannot identify reads `not decodable audio
    (unknown format or damaged file)`."""
    text = str(error)
    if any(words in text for words in _UNIDENTIFIED):
        return "not decodable audio (unknown format or damaged file)"
    return text


# Extensions of the formats soundfile 0.13+ (libsndfile 1.2) decodes, and of
# those it lacks that FFmpeg (PyAV) decodes (below).
LIBSNDFILE_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff",
    ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64", ".sd2", ".voc", ".paf",
    ".svx", ".nist", ".sph", ".ircam", ".sf", ".mat", ".pvf", ".xi", ".htk",
    ".sds", ".avr", ".mpc", ".wve",
})
FFMPEG_EXTENSIONS = frozenset({
    ".m4a", ".m4b", ".mp4", ".aac", ".wma", ".mka", ".webm", ".ape", ".wv", ".ac3",
    ".mp2", ".tta",
})
AUDIO_EXTENSIONS = LIBSNDFILE_EXTENSIONS | FFMPEG_EXTENSIONS


def is_audio_name(name: str) -> bool:
    """Whether a file name has the extension of a format decoded here."""
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


MAX_FILE_RATE = 768_000  # Hz; a header claiming more is not audio we can use
READ_BLOCK_FRAMES = 1 << 20  # frames decoded at a time (memory stays bounded)


def load_audio(path: str, sample_rate: int, quiet: bool = False,
               max_bytes: int | None = None, max_seconds: float | None = None) -> np.ndarray:
    """Decodes `path` to a mono float32 waveform at `sample_rate`, shape (samples,).

    `quiet` silences the decoder library's own messages on stderr (it writes
    resync notes for damaged MP3s); use it in single-threaded workers only.
    `max_bytes` and `max_seconds` bound what one file may cost (see `read_clip`).
    """
    return read_clip(path, sample_rate, quiet, max_bytes, max_seconds)[0]


def read_clip(path: str, sample_rate: int, quiet: bool = False,
              max_bytes: int | None = None, max_seconds: float | None = None):
    """(waveform, full_seconds): `path` decoded to mono float32 at
    `sample_rate`. A file longer than `max_seconds` is cut there and
    `full_seconds` gives its length (None when nothing was cut). Raises
    AudioDecodeError for what is not a regular file (a FIFO, a device, a
    folder, a symlink loop), a file above `max_bytes`, undecodable data and
    NaN or infinite samples; memory stays bounded by the two limits."""
    try:
        fd = open_regular_file(path, max_bytes) if fileio.is_local(path) else None
        try:
            data = _read_remote(path, max_bytes) if fd is None else None
            with native_stderr_silenced(quiet, keep_python_stderr=False):
                return _decode(open_source(data if fd is None else fd), sample_rate,
                               max_seconds)
        finally:
            if fd is not None:
                os.close(fd)
    except AudioDecodeError:
        raise
    except MemoryError:
        raise AudioDecodeError("not enough memory to decode it") from None
    except Exception as error:  # libsndfile reports every failure its own way
        raise AudioDecodeError(f"not decodable audio ({_first_line(error)})") from None


def open_regular_file(path: str, max_bytes: int | None = None) -> int:
    """Opens local `path` for reading and returns the descriptor, after
    making sure (on the open file, so nothing can be swapped in between) it
    is a regular, non-empty file of at most `max_bytes`; anything else is an
    AudioDecodeError saying what it is. Never blocks on a FIFO or device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise AudioDecodeError("file not found") from None
    except OSError as error:
        raise AudioDecodeError(_open_error(error)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AudioDecodeError(f"not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size == 0:
            raise AudioDecodeError("empty file (0 bytes)")
        if max_bytes is not None and info.st_size > max_bytes:
            raise AudioDecodeError(
                f"file of {info.st_size / 2**20:.1f} MB is above the limit of "
                f"{max_bytes / 2**20:.3g} MB (--max-file-mb)")
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _read_remote(path: str, max_bytes: int | None) -> bytes:
    """The bytes of a gs://, ram://, ... file, within `max_bytes`."""
    if not fileio.exists(path):
        raise AudioDecodeError("file not found")
    if fileio.isdir(path):
        raise AudioDecodeError("not a regular file (a folder)")
    with fileio.open_file(path, "rb") as f:
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if not data:
        raise AudioDecodeError("empty file (0 bytes)")
    if max_bytes is not None and len(data) > max_bytes:
        raise AudioDecodeError(f"file is above the limit of {max_bytes / 2**20:.3g} MB "
                               "(--max-file-mb)")
    return data


def _decode(source, sample_rate: int, max_seconds: float | None):
    """Reads an open source block by block (mono mix per block), at most
    `max_seconds`; checks the samples; resamples. See `read_clip`."""
    with source:
        rate = source.samplerate
        if not 0 < rate <= MAX_FILE_RATE:
            raise AudioDecodeError(f"sample rate {rate} Hz is out of range")
        limit = None if max_seconds is None else max(1, int(max_seconds * rate))
        source.rewind()
        blocks, total = [], 0
        while limit is None or total < limit:
            want = READ_BLOCK_FRAMES if limit is None else min(READ_BLOCK_FRAMES,
                                                               limit - total)
            block = source.read(want)
            if not len(block):
                break
            mono = mono_mix(block)
            if not _finite(mono):
                raise NonFiniteAudioError()
            blocks.append(mono)
            total += len(mono)
        full_seconds = None
        if limit is not None and total >= limit and len(source.read(1)):
            full_seconds = max(source.frames or 0, total + 1) / rate
    if total == 0:
        raise AudioDecodeError("no audio samples")
    waveform = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return resample(waveform, rate, sample_rate), full_seconds


def mono_mix(block: np.ndarray) -> np.ndarray:
    """(frames, channels) float32 -> (frames,) float32: the channel mean
    (one channel: the column itself, without a pass over the block; two:
    (left + right) * 0.5, bit for bit numpy's float32 mean of the two,
    which reduces a row of two at a time slowly)."""
    if block.shape[1] == 1:
        return block[:, 0]
    if block.shape[1] == 2:
        mono = np.add(block[:, 0], block[:, 1], dtype=np.float32)
        mono *= np.float32(0.5)
        return mono
    return block.mean(axis=1, dtype=np.float32)


class AudioInfo(typing.NamedTuple):
    """What `file_info` reads from a file's header (and, for FFmpeg, its
    first frame): `frames` is None where the length is not known."""

    sample_rate: int
    channels: int
    frames: int | None
    decoder: str  # "libsndfile" | "FFmpeg"


def file_info(path: str) -> AudioInfo:
    """The sample rate, channels, length and decoder of the audio file at
    `path`, opened as `read_clip` opens it (libsndfile, else FFmpeg);
    AudioDecodeError when it cannot be opened."""
    try:
        fd = open_regular_file(path) if fileio.is_local(path) else None
        try:
            with open_source(_read_remote(path, None) if fd is None else fd) as source:
                return AudioInfo(source.samplerate, source.channels, source.frames,
                                 source.decoder)
        finally:
            if fd is not None:
                os.close(fd)
    except AudioDecodeError:
        raise
    except Exception as error:
        raise AudioDecodeError(f"not decodable audio ({_first_line(error)})") from None


def open_source(source):
    """An open decoder on `source` (a descriptor, left open, or the file's
    bytes): libsndfile's, else FFmpeg's where libsndfile cannot open it.
    Its `read(frames)` gives (frames, channels) float32 at the file's rate,
    fewer at the end, none after; `samplerate`, `channels`, `frames` (by
    its header; None: unknown, or an MP3's past the file's end) and
    `decoder` describe it. A file neither opens is one AudioDecodeError
    with libsndfile's reason; one FFmpeg opens and cannot decode, with
    FFmpeg's. An MP3 that libsndfile would decode short of its end
    (`mp3_frames.length_check`: a length header counting fewer frames than
    the file holds, a varying bit rate without one) is FFmpeg's too; one
    without a length header has the length its frames hold, and is read
    no further where bytes that are no frames follow them."""
    try:
        if isinstance(source, int):
            handle = soundfile.SoundFile(source, closefd=False)
        else:
            handle = soundfile.SoundFile(io.BytesIO(source))
    except Exception as error:  # libsndfile reports every failure its own way
        refused = error
    else:
        if handle.format != "MP3":
            return _Libsndfile(handle)
        size = os.fstat(source).st_size if isinstance(source, int) else len(source)
        check = mp3_frames.length_check(_byte_reader(source), size)
        # without a length header libsndfile decodes no further than its estimate
        if check is None or (check.cut_short is None and (check.frames or 0) <= handle.frames):
            return _Libsndfile(handle, check)
        handle.close()
        refused = None
    if isinstance(source, int):
        os.lseek(source, 0, os.SEEK_SET)
        fileobj = open(source, "rb", closefd=False)  # closed by the source
    else:
        fileobj = io.BytesIO(source)
    try:
        return _FFmpeg(fileobj, refused)
    except BaseException:
        fileobj.close()
        raise


def _byte_reader(source):
    """read(offset, size) -> bytes of a descriptor or of the file's bytes."""
    if isinstance(source, int):
        return lambda offset, size: os.pread(source, size, offset)
    return lambda offset, size: bytes(source[offset:offset + size])


END_FRAMES = 4096  # frames read where a header says a file ends, to check it


def _frames_at_the_end(source):
    """(frames, None): `source`'s length as decoding gives it, read where
    its header says it ends: the last `END_FRAMES` frames by the header
    are read by seeking, and fewer there end it sooner (libsndfile gives
    some Opus files a few samples fewer than their header's). (None, why)
    where the header gives no length, or none of them are there (a file
    cut short after its header was written: decoding through finds its
    length)."""
    if not source.frames:
        return None, "its header does not give its length"
    start = max(0, source.frames - END_FRAMES)
    try:
        found = len(source.read_at(start, source.frames - start))
    except Exception:  # a decoder that fails there: the length is not to be trusted either
        found = 0
    if not found:
        return None, f"its header's {source.frames} frames run past the file's end"
    return start + found, None


class _Libsndfile:
    """libsndfile's decoding of an open SoundFile (see `open_source`)."""

    decoder = "libsndfile"

    def __init__(self, handle, mp3: mp3_frames.LengthCheck | None = None):
        self.handle, self._mp3 = handle, mp3
        self.samplerate, self.channels = handle.samplerate, handle.channels
        self.frames = handle.frames
        if mp3 is not None:  # what the MP3's bytes say of libsndfile's length
            self.frames = None if mp3.past_end else mp3.frames or handle.frames
        # bytes after an MP3's frames that are none: libsndfile fails in them
        self._stop = mp3.frames if mp3 is not None and mp3.after_frames else None

    def checked_frames(self):
        """(frames, None): the file's length, checked; (None, why) where it
        cannot be known without decoding the file. An MP3's was checked
        against its bytes as it was opened (`mp3_frames.length_check`), any
        other's is read at its end (`_frames_at_the_end`)."""
        if self._mp3 is not None:
            return self.frames, self._mp3.past_end
        return _frames_at_the_end(self)

    def rewind(self):
        """As soundfile.read does: the MP3 decoder's first samples differ by
        an ulp without it."""
        if self.handle.seekable():
            self.handle.seek(0)

    @property
    def seek_problem(self) -> str | None:
        """Why `read_at` cannot seek exactly, or None: libsndfile's seeking
        is sample-exact in every format it can seek in (WAV, FLAC, Ogg
        Vorbis and Opus, and MP3 through mpg123's frame index:
        tests/test_audio_spans.py)."""
        return None if self.handle.seekable() else "libsndfile cannot seek in it"

    def read_at(self, frame: int, frames: int) -> np.ndarray:
        """`frames` frames from `frame` on (fewer at the end), by seeking
        from the file's start: libsndfile 1.2's Ogg Vorbis seek from where
        an earlier read stopped may land samples off, from the start it is
        exact (tests/test_audio_spans.py). CannotSeekExactly past the end
        that libsndfile gives the file."""
        try:
            self.handle.seek(0)
            self.handle.seek(frame)
        except soundfile.LibsndfileError as error:
            raise CannotSeekExactly(f"libsndfile cannot seek to frame {frame} of "
                                    f"{self.frames} ({_first_line(error)})") from None
        return self.read(frames)

    def read(self, frames: int) -> np.ndarray:
        # read(), not blocks(): blocks() yields its whole buffer even when
        # fewer frames were decoded than the header promised (a truncated
        # MP3), i.e. uninitialised memory; read() returns what was decoded.
        if self._stop is not None:
            frames = max(0, min(frames, self._stop - self.handle.tell()))
        return self.handle.read(frames, dtype="float32", always_2d=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


class _FFmpeg:
    """FFmpeg's decoding (PyAV) of the first audio stream in `fileobj`, for
    what libsndfile could not open (`refused`: its error). Frames come out
    as interleaved float32 at the rate and channel layout of the first
    decoded frame (FFmpeg's own converter keeps a stream that changes them
    midway at those; no rate conversion otherwise), one packet at a time:
    memory stays flat however long the file. A damaged packet is skipped,
    as mpg123 resyncs past a damaged MP3 frame. One decoding thread, as
    libsndfile has: the builders run one decoder per core."""

    decoder = "FFmpeg"
    # containers whose index gives each packet's time exactly (`read_at`);
    # a raw stream (ADTS AAC, MP2, AC-3) is decoded through: its times after
    # a seek are estimated from the bit rate
    INDEXED_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2"})
    # frames decoded before a span read by seeking (`read_at`): an AAC
    # frame overlaps the one before it (1024 samples; 2048 with SBR)
    PREROLL_FRAMES = 8192
    MIN_PREROLL_FRAMES = 2048

    def __init__(self, fileobj, refused: Exception | None):
        try:
            import av
        except ImportError:
            raise AudioDecodeError(
                f"not decodable audio ({_first_line(refused)}; formats libsndfile lacks "
                "are read with PyAV, which is not installed: pip install av)") from None
        self._av, self._fileobj = av, fileobj
        try:
            self.container = av.open(fileobj, mode="r")
        except Exception as error:  # neither decoder knows it: libsndfile's reason, as before
            reason = _first_line(refused if refused is not None else error)
            raise AudioDecodeError(f"not decodable audio ({reason})") from None
        try:
            streams = self.container.streams.audio
            if not streams:
                raise AudioDecodeError("not decodable audio (no audio stream)")
            stream = streams[0]
            stream.codec_context.thread_count = 1
            self._decoded = self._frames(stream)
            first = next(self._decoded, None)
            if first is None:
                raise AudioDecodeError("no audio samples")
            self.samplerate, self.channels = first.sample_rate, first.layout.nb_channels
            self._converter = av.AudioResampler(format="flt", layout=first.layout,
                                                rate=first.sample_rate)
            self._pending = self._converted(first)
            self._held = sum(len(block) for block in self._pending)
            self.frames = self._length(stream)
        except BaseException:
            self.container.close()
            raise

    def _frames(self, stream):
        for packet in self.container.demux(stream):
            try:
                yield from stream.decode(packet)
            except self._av.error.InvalidDataError:
                continue

    def _converted(self, frame) -> list:
        """(frames, channels) float32 arrays of `frame` (None: the converter's
        last frames)."""
        return [out.to_ndarray().reshape(-1, self.channels)
                for out in self._converter.resample(frame)]

    def _length(self, stream) -> int | None:
        if stream.duration and stream.time_base:
            return int(round(stream.duration * stream.time_base * self.samplerate))
        if self.container.duration:
            return int(round(self.container.duration * self.samplerate / self._av.time_base))
        return None

    def rewind(self):  # decoding starts at the first frame already
        pass

    def checked_frames(self):
        """(frames, None): the file's length, checked; (None, why) where it
        cannot be known without decoding the file (`_frames_at_the_end`)."""
        return _frames_at_the_end(self)

    @property
    def seek_problem(self) -> str | None:
        """Why `read_at` cannot seek exactly, or None (the MP4 family: M4A,
        MP4 with AAC or ALAC)."""
        name = self.container.format.name
        if name not in self.INDEXED_FORMATS:
            return f"FFmpeg seeks in its {name} stream by estimated times"
        return None

    def read_at(self, frame: int, frames: int) -> np.ndarray:
        """`frames` frames from `frame` on (fewer at the end): seeks by
        time to `PREROLL_FRAMES` before it, decodes from there and places
        each decoded frame by its timestamp. CannotSeekExactly where a frame
        has no timestamp, the decoded frames leave a gap, or decoding
        starts less than `MIN_PREROLL_FRAMES` before `frame` (not at the
        stream's start). Reading through (`read`) is over once this is used."""
        stream = self.container.streams.audio[0]
        # a time before the stream's start seeks to its first packet, the
        # encoder's priming included, which FFmpeg then decodes and drops as
        # it does from the start (time 0 would skip it: no overlap for the first frame)
        start = frame - self.PREROLL_FRAMES
        self._decoded, self._pending, self._held = None, [], 0
        self.container.seek(math.floor(start / self.samplerate / stream.time_base),
                            stream=stream)
        blocks, first, end = [], None, None
        for decoded in self._frames(stream):
            if decoded.pts is None or decoded.sample_rate != self.samplerate:
                raise CannotSeekExactly("FFmpeg gives a frame without its time or rate")
            at = int(round(decoded.pts * stream.time_base * self.samplerate))
            if first is None:
                if at > frame - self.MIN_PREROLL_FRAMES and not (start < 0 and at <= 0):
                    raise CannotSeekExactly(f"FFmpeg's seek landed {at - frame} frames "
                                            "past the span's start")
                first = end = at
            elif at != end:
                raise CannotSeekExactly(f"FFmpeg's decoded frames leave a gap at {end}")
            for block in self._converted(decoded):
                blocks.append(block)
                end += len(block)
            if end >= frame + frames:
                break
        if first is None or first > frame:
            return np.zeros((0, self.channels), np.float32)
        joined = np.concatenate(blocks) if blocks else np.zeros((0, self.channels), np.float32)
        return joined[frame - first:frame - first + frames]

    def read(self, frames: int) -> np.ndarray:
        while self._held < frames and self._decoded is not None:
            frame = next(self._decoded, None)
            if frame is None:
                self._decoded = None
            for block in self._converted(frame):
                self._pending.append(block)
                self._held += len(block)
        if not self._pending:
            return np.zeros((0, self.channels), np.float32)
        joined = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        out, rest = joined[:frames], joined[frames:]
        self._pending, self._held = ([rest] if len(rest) else []), len(rest)
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.container.close()
        self._fileobj.close()


# Each decoder opening a local file by name, for what measures them
# (bench/bench_decode.py): a decoder as `open_source` gives, or the error of
# one that cannot open it.
READERS = {
    "libsndfile": lambda path: _Libsndfile(soundfile.SoundFile(path)),
    "FFmpeg": lambda path: _FFmpeg(open(path, "rb"), None),
}


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def _open_error(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "symlink loop"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "cannot read: permission denied"
    if error.errno == errno.ENXIO:  # a socket, or a FIFO with no writer on some systems
        return "not a regular file (a socket or special file)"
    return f"cannot read: {error.strerror or error}"


def stream_audio(path: str, sample_rate: int, block_seconds: float = 30.0):
    """Yields a file's audio as consecutive mono float32 blocks at
    `sample_rate`, about `block_seconds` each, never holding the whole file
    (block reads of either decoder, see `open_source`, + soxr's streaming
    resampler). Raises AudioDecodeError for a missing or undecodable file,
    or one that is not a regular file (a FIFO, a device, a folder, a symlink
    loop), and NonFiniteAudioError for NaN or infinite samples."""
    if not fileio.is_local(path):
        yield from _stream(_read_remote(path, None), sample_rate, block_seconds)
        return
    fd = open_regular_file(path)
    try:
        yield from _stream(fd, sample_rate, block_seconds)
    finally:
        os.close(fd)


def _stream(data_or_fd, sample_rate: int, block_seconds: float):
    try:
        source = open_source(data_or_fd)
    except AudioDecodeError:
        raise
    except Exception as error:
        raise AudioDecodeError(f"not decodable audio ({_first_line(error)})") from None
    with source:
        stream = None
        if source.samplerate != sample_rate:
            stream = soxr.ResampleStream(source.samplerate, sample_rate, 1,
                                         dtype="float32", quality="HQ")
        frames = max(1, int(block_seconds * source.samplerate))
        try:
            while len(block := source.read(frames)):
                mono = mono_mix(block)
                if not _finite(mono):
                    raise NonFiniteAudioError()
                out = stream.resample_chunk(mono) if stream else mono
                if len(out):
                    yield out
        except AudioDecodeError:
            raise
        except Exception as error:
            raise AudioDecodeError(f"not decodable audio ({_first_line(error)})") from None
        if stream is not None:
            tail = stream.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(tail):
                yield tail


class WindowStream:
    """`audio_windows(...)` for a `for` loop: iterates its (start, window)
    pairs; `total`, the file's length in samples that the generator returns,
    is set once they have all been read (None before)."""

    def __init__(self, windows):
        self._windows = windows
        self.total = None

    def __iter__(self):
        self.total = yield from self._windows


def audio_windows(path: str, sample_rate: int, window: int, hop: int | None = None,
                  block_seconds: float = 30.0, edge_padding: int = 0):
    """Yields (start_sample, window) pairs, `window` samples each, every `hop`
    samples (default: no overlap), streaming through the file. The last
    partial window is dropped unless the file is shorter than one window,
    in which case that one window is zero-padded. The generator returns
    (`StopIteration.value`, passed on by `yield from`) the file's length in
    samples at `sample_rate`.

    `edge_padding` pads the file by that many samples at each edge first,
    reflected as a centred STFT pads (numpy's "reflect": x[p], ..., x[1]
    before, x[-2], ..., x[-p - 1] after), and the windows are cut from the
    padded signal: window k holds its samples from `k * hop` on, i.e. the
    file's from `k * hop - edge_padding` (`start_sample` is `k * hop`). An
    uncentred STFT over each window then gives the frames of one centred
    STFT over the whole file (`tagger.models.saved.window_grid`). `path` may
    also be a mono array of audio already at `sample_rate` (a clip of records)."""
    hop = hop or window
    pad = int(edge_padding)
    buffer = np.zeros(0, np.float32)
    offset = 0  # index of buffer[0] in the padded signal
    start = 0
    total = 0
    head = None if pad else np.zeros(0, np.float32)  # the file's start, until pad + 1 came
    tail = np.zeros(0, np.float32)  # the file's last pad + 1 samples

    def cut(buffer, offset, start):
        windows = []
        while start + window <= offset + len(buffer):
            begin = start - offset
            windows.append((start, buffer[begin:begin + window]))
            start += hop
        return windows, start

    blocks = ([np.asarray(path, np.float32)] if isinstance(path, np.ndarray)
              else stream_audio(path, sample_rate, block_seconds))
    for block in blocks:
        total += len(block)
        if pad:
            tail = np.concatenate([tail, block])[-(pad + 1):]
            if head is None:  # the reflection needs the first pad + 1 samples
                buffer = np.concatenate([buffer, block])
                if len(buffer) <= pad:
                    continue
                head, block, buffer = buffer, np.concatenate([buffer[pad:0:-1], buffer]), \
                    np.zeros(0, np.float32)
        buffer = np.concatenate([buffer, block])
        windows, start = cut(buffer, offset, start)
        yield from windows
        drop = min(start - offset, len(buffer))
        buffer, offset = buffer[drop:], offset + drop
    if total == 0:
        raise AudioDecodeError("no audio samples")
    if pad:
        if head is None:  # the whole file is shorter than pad + 1 samples
            buffer = np.pad(buffer, pad, mode="reflect").astype(np.float32)
        else:
            buffer = np.concatenate([buffer, tail[-2::-1][:pad]])
        windows, start = cut(buffer, offset, start)
        yield from windows
    if total + 2 * pad < window:
        padded = np.zeros(window, np.float32)
        padded[:total + 2 * pad] = buffer  # nothing was yielded: the buffer is all of it
        yield 0, padded
    return total


def _finite(samples: np.ndarray) -> bool:
    """No NaN or infinity among `samples` (min and max: no boolean temporary)."""
    return not len(samples) or (math.isfinite(samples.min())
                                and math.isfinite(samples.max()))


def resampled_length(frames: int, file_rate: int, sample_rate: int) -> int:
    """The samples `stream_audio` gives at `sample_rate` for `frames` at
    `file_rate`: soxr's streaming resampler ends its output at
    `(double) frames / (file_rate / sample_rate) + .5` cut to an integer
    (`_soxr_flush` in soxr's src/cr.c; checked with python-soxr 1.1.0 in
    tests/test_audio.py)."""
    if file_rate == sample_rate:
        return int(frames)
    return int(int(frames) / (file_rate / sample_rate) + 0.5)


def resample(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resamples a mono waveform (samples,) with soxr's high-quality filter."""
    if source_rate == target_rate:
        return np.ascontiguousarray(waveform, dtype=np.float32)
    return soxr.resample(waveform, source_rate, target_rate, quality="HQ").astype(
        np.float32, copy=False)


def segment(waveform: np.ndarray, segment_length: int) -> np.ndarray:
    """Cuts (samples,) into non-overlapping (segments, segment_length); the tail is dropped."""
    count = len(waveform) // segment_length
    return waveform[:count * segment_length].reshape(count, segment_length)


def to_int16(waveform: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> int16 (values outside are clipped); one scratch
    buffer, no temporaries (equal to round(clip(x, -1, 1) * 32767))."""
    scaled = np.multiply(waveform, np.float32(INT16_SCALE), dtype=np.float32)
    np.clip(scaled, -INT16_SCALE, INT16_SCALE, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.int16)


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    if type(error).__module__.startswith("av.") and getattr(error, "strerror", None):
        text = error.strerror  # PyAV's str() adds an errno and the file's name
    text = re.sub(r"Error opening (<[^>]*>|\d+|'[^']*'): ", "", text.splitlines()[0])
    return text.strip().rstrip(".")
