"""The documentation: a short README that links to one document per topic under docs/, and relative links
between them that work (files exist, `#anchors` name a heading of the target, by GitHub's rules)."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

# The README is a newcomer's page or two: what the service is, who uses it, the two commands, where the
# settings live, a map of the code and the list of documents. Topics go to docs/.
README_MAX_LINES = 250

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target) and ![alt](target); the text may hold one level of brackets (an image inside a link).
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = ("http:", "https:", "mailto:")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md")), *sorted((ROOT / "deploy").glob("*.md"))]


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The file's lines outside fenced code blocks, with their numbers."""
    out, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, line))
    return out


def slug(heading_text: str) -> str:
    """GitHub's anchor of a heading: its text as rendered, lower case, punctuation removed except '-' and
    '_' (letters of any script, CJK included, and digits kept), each space a '-'."""
    text = INLINE_CODE.sub(lambda m: m.group(2), heading_text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)      # a link or image: its text
    text = re.sub(r"<[^>]+>", "", text)                          # inline HTML tags
    text = text.strip().lower()
    text = "".join(ch for ch in text if ch in "-_ " or ch.isalnum() or re.match(r"\w", ch))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor the document's headings produce; a repeated heading gets -1, -2, ..."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        if base in seen:
            seen[base] += 1
            out.add(f"{base}-{seen[base]}")
        else:
            seen[base] = 0
            out.add(base)
    return out


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every relative link and image outside code."""
    out = []
    for number, line in prose_lines(path):
        line = INLINE_CODE.sub("", line)
        for match in LINK.finditer(line):
            target = match.group(2)
            if target and not target.lower().startswith(EXTERNAL):
                out.append((number, target))
    return out


def test_slugs_follow_githubs_rules():
    """Does the anchor function give GitHub's anchors for headings like ours: punctuation and code marks
    dropped, CJK kept, spaces as hyphens, repeated headings numbered?"""
    assert slug("Consumer verification (`/v/{code}`)") == "consumer-verification-vcode"
    assert slug("The special-mark ledger (台账)") == "the-special-mark-ledger-台账"
    assert slug("Scaling out: a primary, hot standbys, pgbouncer and nginx") == \
        "scaling-out-a-primary-hot-standbys-pgbouncer-and-nginx"
    assert slug("EPCIS 2.0 export") == "epcis-20-export"
    assert slug("GI_ENV and [the API](api.md)") == "gi_env-and-the-api"


def test_repeated_headings_get_numbered_anchors(tmp_path):
    """Does a heading that occurs again get the anchors -1, -2 as on GitHub, and is a heading inside a
    fenced code block ignored?"""
    doc = tmp_path / "doc.md"
    doc.write_text("# Notes\n\n## Notes\n\n```sh\n# Notes\n```\n\n### Notes\n", encoding="utf-8")
    assert anchors(doc) == {"notes", "notes-1", "notes-2"}


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_reach_a_file_and_a_heading(path):
    """Does every relative link and image of this document name a file that exists and, with a `#anchor`,
    a heading of that document that produces the anchor?"""
    name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    broken = []
    for number, target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path
        where = f"{name}:{number}: {target}"
        if not dest.exists():
            broken.append(f"{where} (no such file)")
        elif anchor and (dest.suffix != ".md" or unquote(anchor) not in anchors(dest)):
            broken.append(f"{where} (no heading makes #{anchor})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_readme_is_short_and_links_every_document():
    """Is the README a page or two (at most README_MAX_LINES lines) that links to every document under
    docs/?"""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move topics to docs/"
    documents = sorted(DOCS.glob("*.md"))
    assert documents, "docs/ holds no documents"
    linked = {(README.parent / t.partition("#")[0]).resolve() for _, t in relative_links(README)}
    missing = [d.relative_to(ROOT).as_posix() for d in documents if d.resolve() not in linked]
    assert not missing, f"the README does not link to {missing}"
