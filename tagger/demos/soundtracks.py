"""Recorded music that installs with the system's packages: Debian's game
soundtracks, fetched with `apt-get download`, unpacked with `dpkg-deb` and
laid out as a folder of audio files, one subfolder per package.

Each package is in Debian's main archive (free software by the Debian Free
Software Guidelines); its licence is named in `SOUNDTRACKS` and its
copyright file is kept beside its music. Game music covers few genres:
orchestral, ambient, electronic and rock instrumentals, hardly any voice.

`SOUNDTRACKS` are the demos' music; `MORE_SOUNDTRACKS` widen the set a
bench measures on (`soundtrack_named` finds either by its package).
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import subprocess
import zipfile

from tagger import fileio
from tagger.audio import is_audio_name
from tagger.errors import UserError


@dataclasses.dataclass(frozen=True)
class Soundtrack:
    """A package and where its music lies in it: a folder, or a zip archive
    (a game's `.pk3`) whose audio members are extracted."""

    package: str
    music: str  # path inside the package
    licence: str
    # files of one song's folder that play together (a game's stems): each
    # folder holding them is mixed into one recording, <folder>.flac
    stems: tuple = ()


SOUNDTRACKS = (
    Soundtrack("nexuiz-music", "usr/share/games/nexuiz/data/music.pk3", "GPL-2+"),
    Soundtrack("warzone2100-music", "usr/share/games/warzone2100/music", "CC BY-SA 3.0"),
    Soundtrack("ufoai-music", "usr/share/games/ufoai/base/0music.pk3", "CC BY-SA 3.0"),
    Soundtrack("hyperrogue-music", "usr/share/hyperrogue/music", "CC BY-SA 4.0"),
    Soundtrack("asc-music", "usr/share/games/asc/music", "GPL-2+"),
    Soundtrack("drascula-music", "usr/share/scummvm/drascula/audio", "Drascula licence"),
)
MORE_SOUNDTRACKS = (
    Soundtrack("singularity-music", "usr/share/games/singularity/music", "CC BY-SA 3.0"),
    Soundtrack("planetblupi-music-ogg", "usr/share/planetblupi/music", "GPL-3+"),
    Soundtrack("fretsonfire-songs-sectoid", "usr/share/games/fretsonfire/data/songs/sectoid",
               "Expat", stems=("song.ogg", "guitar.ogg")),
)
APT_TIMEOUT = 1800  # seconds for apt-get download of every package (about 490 MB)


def soundtrack_named(package: str) -> Soundtrack:
    """The soundtrack of `package` in `SOUNDTRACKS` or `MORE_SOUNDTRACKS`;
    a UserError naming them where it is in neither."""
    known = {s.package: s for s in (*SOUNDTRACKS, *MORE_SOUNDTRACKS)}
    if package not in known:
        raise UserError(f"expected one of Debian's soundtracks {', '.join(known)}, "
                        f"got {package!r}")
    return known[package]


def fetch_packages(packages, folder) -> list:
    """The .deb file of each package in `folder`, fetched there with
    `apt-get download` where missing (UserError saying why it failed)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(folder.glob(f"{p}_*.deb"))]
    if missing:
        if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
            raise UserError("Debian's game soundtracks need apt-get and dpkg-deb (a Debian or "
                            "Ubuntu system); give a folder of your own music instead")
        try:
            done = subprocess.run(["apt-get", "download", *missing], cwd=folder,
                                  capture_output=True, text=True, timeout=APT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise UserError(f"apt-get download {' '.join(missing)} took over "
                            f"{APT_TIMEOUT // 60} minutes; try again") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"apt-get download {' '.join(missing)} failed: {last}")
    return [sorted(folder.glob(f"{p}_*.deb"))[-1] for p in packages]


def unpacked(deb, folder) -> pathlib.Path:
    """`deb` unpacked (`dpkg-deb -x`) into `folder`, once: a folder that
    exists is taken as unpacked."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True,
                       capture_output=True, timeout=APT_TIMEOUT)
        fileio.move_into_place(str(partial), str(folder))
    return folder


def music_folder(out_dir, debs_dir, soundtracks=SOUNDTRACKS) -> list:
    """Lays out the music of `soundtracks` in `out_dir/<package>/` (fetched
    into `debs_dir`; a package's folder that exists is kept as it is) and
    returns the package folders. Only audio files are kept, each package's
    copyright file beside them."""
    out_dir = pathlib.Path(out_dir)
    debs = fetch_packages([s.package for s in soundtracks], debs_dir)
    folders = []
    for soundtrack, deb in zip(soundtracks, debs):
        target = out_dir / soundtrack.package
        if not target.is_dir():
            work = pathlib.Path(debs_dir) / "unpacked" / soundtrack.package
            root = unpacked(deb, work)
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            _copy_music(root / soundtrack.music, partial, soundtrack.stems)
            copyright_file = root / "usr/share/doc" / soundtrack.package / "copyright"
            if copyright_file.exists():
                shutil.copyfile(copyright_file, partial / "copyright.txt")
            fileio.move_into_place(str(partial), str(target))
            shutil.rmtree(work)
        folders.append(target)
    return folders


def _copy_music(source: pathlib.Path, target: pathlib.Path, stems: tuple = ()) -> None:
    """The audio files of a folder (kept in their subfolders) or of a zip
    archive (flattened) copied into `target`; with `stems`, each folder
    holding them mixed (`mix_stems`) instead."""
    target.mkdir(parents=True)
    if stems:
        for song in sorted(p.parent for p in source.rglob(stems[0])):
            if all((song / stem).is_file() for stem in stems):
                mix_stems([song / stem for stem in stems], target / f"{song.name}.flac")
        return
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.is_file() and is_audio_name(path.name):
                (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / path.relative_to(source))
        return
    with zipfile.ZipFile(source) as archive:
        for member in archive.namelist():
            name = member.rpartition("/")[2]
            if name and is_audio_name(name):
                with archive.open(member) as data, open(target / name, "wb") as out:
                    shutil.copyfileobj(data, out)


def mix_stems(paths, out) -> None:
    """The audio files `paths`, of one rate, added sample by sample (the
    shorter ones padded with silence, as a player plays them together) and
    written to `out` as 16-bit FLAC, scaled down where the sum would clip."""
    import numpy as np
    import soundfile

    parts = [soundfile.read(str(path), dtype="float32", always_2d=True) for path in paths]
    rates = {rate for _, rate in parts}
    if len(rates) != 1:
        raise ValueError(f"expected stems of one sample rate, got {sorted(rates)} in "
                         f"{[str(p) for p in paths]}")
    frames = max(len(samples) for samples, _ in parts)
    channels = max(samples.shape[1] for samples, _ in parts)
    mix = np.zeros((frames, channels), np.float32)
    for samples, _ in parts:
        mix[:len(samples)] += samples  # a mono stem plays in every channel
    peak = float(np.abs(mix).max()) if frames else 0.0
    soundfile.write(str(out), mix / peak if peak > 1 else mix, rates.pop(),
                    format="FLAC", subtype="PCM_16")
