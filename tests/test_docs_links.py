"""The README and docs/ link only to files (and headings) that exist, and the
README stays short."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_CHARS = 10_000

# [text](target) or [text](target "title"); images ![alt](target) too.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def markdown_files():
    return [README] + sorted((ROOT / "docs").rglob("*.md"))


def relative_links(text: str):
    """(target, path, anchor) of the relative links outside code."""
    text = CODE_SPAN.sub("", FENCE.sub("", text))
    for target in LINK.findall(text):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        yield target, unquote(path.split("?", 1)[0]), unquote(anchor)


def anchors(text: str) -> set[str]:
    """The ids GitHub gives a Markdown file's headings: lower case, punctuation
    dropped, spaces to hyphens, repeats numbered -1, -2, ..."""
    seen, ids = {}, set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        ids.add(slug if n == 0 else f"{slug}-{n}")
    return ids


def broken_links(markdown: Path):
    broken = []
    for target, path, anchor in relative_links(markdown.read_text(encoding="utf-8")):
        file = (markdown.parent / path) if path else markdown
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and file.is_file() \
                and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(target)
    return broken


@pytest.mark.parametrize("markdown", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(markdown):
    broken = broken_links(markdown)
    assert not broken, (f"{markdown.relative_to(ROOT)} links to missing files or headings: "
                        f"{broken}; fix the path (relative to the Markdown file's folder) "
                        "or the #heading, or add the file")


def test_link_finder_sees_what_it_should(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n## What `tag.py` writes: files\n## Top\n"
        "[ok](page.md) ![img](page.md#top) [missing](nope.md#anchor) [web](https://x.org/a.md)\n"
        "[mail](mailto:a@b.c) [here](#what-tagpy-writes-files) [again](#top-1) [gone](#nothing)\n"
        "`[code](gone.md)`\n```\n# not a heading\n[fenced](gone.md)\n```\n"
        "[not a heading](#not-a-heading)\n", encoding="utf-8")
    assert broken_links(page) == ["nope.md#anchor", "#nothing", "#not-a-heading"]


def test_readme_is_a_front_door():
    # what a reader sees: HTML comments (tests/test_docs_python.py's markers) do not show
    shown = re.sub(r"<!--.*?-->\n?", "", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    chars = len(shown)
    assert chars <= README_MAX_CHARS, (
        f"README.md has {chars} characters, at most {README_MAX_CHARS} expected: "
        "move reference text into docs/commands/ or another docs page")
