"""The Python blocks of README.md and docs/**/*.md run: a page's blocks in
order, in one namespace, in a temporary folder, on tiny inputs.

A marker comment right before a block (invisible on the rendered page)
gives it what a reader would have:

    <!-- doc-test: setup song song.mp3; model model.keras -->
        runs SETUPS["song"]("song.mp3"), then SETUPS["model"]("model.keras"):
        each writes a file the block reads (a song, a tiny model) or gives
        a name it uses (`windows`) before the block runs;
    <!-- doc-test: skip (WHY) -->
        the block is not run; WHY says what it needs that the suite cannot
        have.

A setup that needs what this machine lacks (an optional package, the
package index) skips the page's remaining blocks, saying why. A line
`print(...)  # TEXT` says what it prints: TEXT must be among the lines the
block printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(?:<!-- doc-test: (?P<marker>[^\n]*?) -->\n\s*)?"  # its marker, if any
                   r"^```python\n(?P<code>.*?)^```$", re.DOTALL | re.MULTILINE)
MARKER = re.compile(r"<!-- doc-test: ([^\n]*?) -->")
PRINTS = re.compile(r"^\s*print\(.*\)\s*# (.+)$", re.MULTILINE)  # print(x)  # what it prints
SONG_SECONDS = 6.0


@dataclasses.dataclass(frozen=True)
class Block:
    page: Path
    line: int
    code: str
    marker: str | None

    @property
    def skip_reason(self) -> str | None:
        match = re.fullmatch(r"skip \((.+)\)", self.marker or "")
        return match.group(1) if match else None

    @property
    def setups(self) -> list:
        """[(name, args), ...] of a `setup` marker, in order."""
        if not (self.marker or "").startswith("setup "):
            return []
        return [(item.split()[0], item.split()[1:])
                for item in self.marker[len("setup "):].split(";")]


def blocks(page: Path) -> list:
    text = page.read_text(encoding="utf-8")
    return [Block(page, text.count("\n", 0, m.start("code")) + 1, m.group("code"),
                  m.group("marker")) for m in BLOCK.finditer(text)]


class Setups:
    """What the blocks of one page are given, in its temporary folder (the
    current directory); `request` gives the session's fixtures."""

    def __init__(self, request, monkeypatch, namespace):
        self.request, self.monkeypatch, self.namespace = request, monkeypatch, namespace

    def song(self, path):
        """A few seconds of rendered music (piano and drums) as an MP3."""
        from tests.checks import write_audio

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_audio(path, int(SONG_SECONDS * 22050))

    def text(self, path):
        """A file that is not audio."""
        Path(path).write_text("shopping: bread, milk\n")

    def model(self, path):
        """A tiny untrained sample-level CNN of the 50 MagnaTagATune tags,
        saved as train.py saves its models."""
        from tagger.datasets.mtt import MTT_TOP50
        from tagger.models import family
        from tests.checks import records_info, saved_model

        made = saved_model("samplecnn", family("samplecnn").tiny,
                           records_info(MTT_TOP50, 22050, 59049), Path(path).parent)
        made.rename(path)

    def musicnn(self):
        """MTT_musicnn in the session's cache, converted from the musicnn
        package's wheel as a user's first use converts it (the wheel is
        fetched with pip once per test run: the `musicnn_wheel` fixture)."""
        from tagger.commands import pretrained as pretrained_cmd

        wheel = self.request.getfixturevalue("musicnn_wheel")
        assert pretrained_cmd.main(["download", "MTT_musicnn", "--weights", wheel,
                                    "--no-progress"]) == 0

    def release_mirror(self):
        """A cache of this page's own, and TAGGER_WEIGHTS_URL naming a file://
        mirror of the releases' files that the page names, in their layouts
        with random weights (the original tiny ReSE+multi in resemul's
        Keras 2 layout; the Music Tagging Transformer teacher written by
        PyTorch, as tests/convert/test_transformer.py writes it)."""
        torch = pytest.importorskip("torch", reason="the mirror's teacher.ckpt is written "
                                                    "with PyTorch (requirements-torch.txt)")
        from tagger.pretrained.registry import get
        from tests.checks import random_resemul_model, write_keras2_file
        from tests.convert import originals

        mirror = Path("mirror").absolute()
        mirror.mkdir()
        write_keras2_file(random_resemul_model("rese", 0), "rese",
                          mirror / get("mtat-samplecnn-rese").file_name)
        torch.manual_seed(0)
        teacher = originals.MusicTaggingTransformer(attention_ndim=256)
        torch.save({"epoch": 0, "state_dict": {f"network.{k}": v for k, v in
                                               teacher.state_dict().items()}},
                   mirror / get("msd-transformer").file_name)
        self.monkeypatch.setenv("TAGGER_HOME", str(Path("cache").absolute()))
        self.monkeypatch.setenv("TAGGER_WEIGHTS_URL", mirror.as_uri())

    def waveforms(self):
        """`waveforms`: a (2, 59049) float32 batch of 2.68 s at 22050 Hz."""
        from tests.checks import gliding_tones

        self.namespace["waveforms"] = gliding_tones(59049, batch=2, rate=22050)

    def windows(self):
        """`windows`: a (2, 59049) float32 NumPy batch of 2.68 s at 22050 Hz."""
        from tests.checks import gliding_tones

        self.namespace["windows"] = gliding_tones(59049, batch=2, rate=22050)

    def exported(self, fmt, path):
        """A tiny tagger (`model`) exported by export.py as `fmt` (saved_model
        or tflite) at `path` (without export.py's check of its scores:
        tests/inference/test_export.py checks them)."""
        from tagger.inference.export.config import ExportConfig
        from tagger.inference.export.formats import export

        if fmt == "tflite":
            pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed "
                                                         "(requirements-dev.txt)")
        self.model("exported/model.keras")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        export(ExportConfig(model="exported/model.keras", format=fmt, out=path, verify=False),
               log=lambda line: None)

    def embeddings(self, path):
        """tag.py's --embeddings archive at `path` of music/song.mp3, tagged by
        a tiny model."""
        from tagger.commands import tag as tag_cmd

        self.song("music/song.mp3")
        self.model("embedder/model.keras")
        assert tag_cmd.main(["embedder/model.keras", "music", "--embeddings", path,
                             "--no-progress"]) == 0


SETUPS = {name for name in vars(Setups) if not name.startswith("_")}
PAGES_WITH_CODE = [page for page in PAGES if blocks(page)]


def test_every_marker_names_a_setup_or_why_it_skips():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        found = blocks(page)
        attached = [b.marker for b in found if b.marker is not None]
        # a marker not right before a block would be silently ignored
        assert MARKER.findall(text) == attached, page
        for block in found:
            if block.marker is None:
                continue
            assert block.skip_reason or block.setups, f"{page}:{block.line}: {block.marker!r}"
            for name, _ in block.setups:
                assert name in SETUPS, f"{page}:{block.line}: no setup {name!r}"


@pytest.mark.slow  # builds, converts and runs models
@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_python_blocks_of_a_page_run(page, request, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    setups = Setups(request, monkeypatch, namespace)
    for block in blocks(page):
        if block.skip_reason:
            continue
        for name, args in block.setups:
            getattr(setups, name)(*args)
        where = f"{page.relative_to(ROOT)}:{block.line}"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block.code, where, "exec"), namespace)  # noqa: S102
        lines = printed.getvalue().splitlines()
        for said in PRINTS.findall(block.code):
            assert said in lines, f"{where}: printed {lines}, the page says {said!r}"


def test_blocks_and_markers_are_read_with_their_lines(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\na = 1\n```\n\n<!-- doc-test: setup song x.mp3; "
                    "model m.keras -->\n```python\nb = 2\n```\n<!-- doc-test: skip (the MSD) "
                    "-->\n\n```python\nc = 3\n```\n```bash\nls\n```\n")
    first, second, third = blocks(page)
    assert (first.line, first.code, first.marker) == (4, "a = 1\n", None)
    assert (second.line, second.code) == (9, "b = 2\n")
    assert second.setups == [("song", ["x.mp3"]), ("model", ["m.keras"])]
    assert second.skip_reason is None
    assert (third.line, third.code, third.skip_reason, third.setups) == (
        14, "c = 3\n", "the MSD", [])
    assert PRINTS.findall("print(a)  # 1 2\nprint(b)\n  print(c) # x\n") == ["1 2", "x"]
