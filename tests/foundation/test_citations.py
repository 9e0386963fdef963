"""Every citation in the repository leads somewhere a fresh clone can follow.

Fails when a tracked file cites a research note kept outside the repository, a ``docs/*.md`` file that does not
exist, or a section of docs/aws-behaviours.md (``§N``, ``aws_behaviours_N`` in a test name, ``#anchor``) that does
not exist. Cite the AWS/Airflow documentation or a section of docs/aws-behaviours.md instead.
"""

import re
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BEHAVIOURS = "docs/aws-behaviours.md"

# Notes that never were in the repository. Spelled in pieces so that this file does not cite them itself.
OUTSIDE_NOTES = re.compile("|".join(["aws" + r"_domain(?:\.md|\s*§|_\d)", "wave" + r"2\.md", "/work" + "/shared"]))
# A path ending in this name is fine only when it names a file of the repository.
NOTE_PATH = re.compile(r"[\w./-]*\bairflow" + r"\.md\b")
# docs/<file>.md relative to the root, or ../docs/<file>.md relative to the citing file (not part of a URL path).
DOCS_REF = re.compile(r"(?<![\w./-])((?:\.\./)*docs/[\w.-]+\.md)\b")
SECTION_REF = re.compile(r"§\s*(\d+(?:\.\d+)*)")
TEST_NAME_REF = re.compile(r"aws_behaviours_(\d+)")
ANCHOR_REF = re.compile(r"aws-behaviours\.md#([\w-]+)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)
SECTION_HEADING = re.compile(r"^## (\d+)\. \S", re.M)


def tracked_files() -> list[str]:
    """``git ls-files``; outside a git checkout every file except VCS, venv and cache folders."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        return [name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "__pycache__", ".ruff_cache", ".pytest_cache", "node_modules"}
        return [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)
        ]


def tracked_texts() -> list[tuple[str, str]]:
    """(path, text) of every tracked text file; binary files (NUL byte or not UTF-8) are left out."""
    texts = []
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the working tree, not yet committed
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            texts.append((name, data.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    return texts


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@cache
def behaviour_sections() -> tuple[frozenset[int], frozenset[str]]:
    text = (ROOT / BEHAVIOURS).read_text(encoding="utf-8")
    numbers = frozenset(int(n) for n in SECTION_HEADING.findall(text))
    anchors = frozenset(github_slug(h) for h in HEADING.findall(text))
    return numbers, anchors


def _exists(citing: str, ref: str) -> bool:
    base = (ROOT / citing).parent if ref.startswith("../") else ROOT
    return (base / ref).resolve().is_file()


def problems(path: str, text: str) -> list[str]:
    """Every dead citation in one file, as 'path:line: what'."""
    numbers, anchors = behaviour_sections()
    cites_behaviours = "aws-behaviours.md" in text
    found = []
    for lineno, line in enumerate(text.splitlines(), 1):
        where = f"{path}:{lineno}"
        for m in OUTSIDE_NOTES.finditer(line):
            found.append(f"{where}: cites {m.group(0)!r}, a note outside the repository")
        for m in NOTE_PATH.finditer(line):
            if not _exists(path, m.group(0)):
                found.append(f"{where}: cites {m.group(0)!r}, which is not a file of the repository")
        for m in DOCS_REF.finditer(line):
            if not _exists(path, m.group(1)):
                found.append(f"{where}: cites {m.group(1)!r}, which does not exist")
        for m in TEST_NAME_REF.finditer(line):
            if int(m.group(1)) not in numbers:
                found.append(f"{where}: {m.group(0)!r} names no section of {BEHAVIOURS}")
        if cites_behaviours:
            for m in SECTION_REF.finditer(line):
                if not m.group(1).isdigit() or int(m.group(1)) not in numbers:
                    found.append(f"{where}: §{m.group(1)} is not a section of {BEHAVIOURS}")
            for m in ANCHOR_REF.finditer(line):
                if m.group(1) not in anchors:
                    found.append(f"{where}: #{m.group(1)} is not a heading of {BEHAVIOURS}")
    return found


def test_no_tracked_file_cites_a_document_that_is_not_in_the_repository():
    texts = tracked_texts()
    assert len(texts) > 50 and any(name == BEHAVIOURS for name, _ in texts), "the file list looks wrong"
    found = [p for name, text in texts for p in problems(name, text)]
    assert not found, "dead citations (cite the AWS/Airflow docs or docs/aws-behaviours.md §N):\n" + "\n".join(found)


def test_behaviour_sections_are_numbered_one_to_n_once_each():
    text = (ROOT / BEHAVIOURS).read_text(encoding="utf-8")
    numbers = [int(n) for n in SECTION_HEADING.findall(text)]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    assert len(numbers) >= 20


def test_each_kind_of_dead_citation_is_reported():
    numbers, _ = behaviour_sections()
    missing = max(numbers) + 1
    # Built from pieces so that this file does not contain the dead citations it tests.
    outside, sec = "aws" + "_domain", "\u00a7"
    cases = {
        f"# see {outside} {sec}1.1": "a note outside the repository",
        f"def test_x_{outside}_1_6():": "a note outside the repository",
        "see " + "wave" + "2.md": "a note outside the repository",
        "copied from " + "/work" + "/shared/research": "a note outside the repository",
        "(air" + f"flow.md {sec}2.9)": "not a file of the repository",
        "see " + "docs/" + "no-such-file.md": "does not exist",
        f"see {BEHAVIOURS} {sec}{missing}": "is not a section",
        f"see {BEHAVIOURS} {sec}1.11": "is not a section",
        f"def test_x_aws_behaviours_{missing}():": "names no section",
        f"[x](../{BEHAVIOURS}" + "#no-such-heading)": "is not a heading",
    }
    for line, expected in cases.items():
        reported = problems("sandbox/example.py", line)
        assert len(reported) == 1 and expected in reported[0], (line, reported)
    fine = [
        f"see {BEHAVIOURS} {sec}1 and {sec}2",
        "def test_x_aws_behaviours_1():",
        f"[x](../{BEHAVIOURS}#1-sendcommand)",
        "see docs/architecture.md",
        "https://airflow.apache.org/docs/apache-airflow/stable/x.md",
    ]
    for line in fine:
        assert problems("sandbox/example.py", line) == [], line
