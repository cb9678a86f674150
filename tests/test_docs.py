"""The documentation: the site builds in strict mode (no broken page, link or API reference), the
README's links resolve, and every `avssl fit` / `avssl test` command the docs show parses."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from avssl.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def commands() -> list[tuple[str, str]]:
    """``(page, command)`` for every ``avssl fit`` / ``avssl test`` line in a shell block."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #", 1)[0].strip()
                if re.match(r"^(\.venv/bin/)?avssl (fit|test) ", line):
                    found.append((str(page.relative_to(ROOT)), line))
    return found


def test_the_site_builds_in_strict_mode(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "evaluation" / "index.html").read_text().count("extract_features") > 2


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    links = [link for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text) if not link.startswith("http")]
    assert links and [link for link in links if not (ROOT / link).exists()] == []


@pytest.mark.parametrize("page,command", commands(), ids=lambda x: x if len(x) < 60 else x[:60])
def test_every_documented_command_parses(page, command, capsys):
    args = shlex.split(command)[1:]
    if any("[" in a and not a.startswith("--") for a in args):
        pytest.skip("a usage pattern with optional parts, not a command")
    asks_help = "--help" in args
    with pytest.raises(SystemExit) as exit_:
        main(args if asks_help else [*args, "--print_config"])
    out, err = capsys.readouterr()
    assert exit_.value.code in (0, None), err
    assert ("usage: avssl" if asks_help else "model:") in out
