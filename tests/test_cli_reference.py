"""docs/cli.md is the commands' own help (it cannot drift), and shell completion works as
that page says."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_cli_md_is_the_commands_help() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cli_reference.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for command in ("opstatus wait", "opstatus role list", "opstatus webhook create"):
        assert f"### `{command}`" in page
    assert "| `130` | interrupted (Ctrl-C), or a confirmation declined" in page


def test_bash_completion_completes_commands_and_choices() -> None:
    opstatus = shutil.which("opstatus", path=str(Path(sys.executable).parent))
    if opstatus is None:
        pytest.fail("the opstatus command is not installed beside this Python")

    def complete(words: str, cword: int) -> list[str]:
        env = {
            **os.environ,
            "_OPSTATUS_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
        }
        done = subprocess.run([opstatus], env=env, capture_output=True, text=True, check=True)
        return done.stdout.split()

    assert "plain,wait" in complete("opstatus wa", 1)
    assert set(complete("opstatus get x -o ", 4)) >= {"plain,table", "plain,json", "plain,env"}
    script = subprocess.run(
        [opstatus],
        env={**os.environ, "_OPSTATUS_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "complete -o nosort -F _opstatus_completion opstatus" in script.stdout
