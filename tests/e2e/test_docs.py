"""The README's and the docs' examples, run as written against a real server.

Each page's ``sh`` blocks run in order in one bash (variables carry over, ``set -e``), then its
``python`` blocks in one namespace. Comment lines right under a command (no blank line
between) are the output it shows: the command's standard output must match them, whitespace
aside, with ``...`` standing for any text (times, ids). In a Python block, comment lines at
the start of the line right under code are what the code since the last such lines prints.
A block preceded by ``<!-- example: not run (why) -->`` is left out (installing, starting a
server).

A block preceded by ``<!-- example: streams (why) -->`` holds commands that run until their
user stops them (an event stream, a watch): each command there with output shown runs in the
background and is stopped once that output has arrived (or after :data:`STREAM_SECONDS`, and
then the comparison fails with what came); a command that ends by itself before must succeed.
``<!-- example server: FLAGS -->`` anywhere on a page starts its server with FLAGS as well.
``<!-- example: meanwhile: COMMANDS -->`` (or ``streams (why); meanwhile: COMMANDS``) runs
COMMANDS in the background a second after the block starts, as a producer elsewhere would,
and the block then waits for them to succeed.

Placeholders the test fills: the server's URL for ``http://127.0.0.1:8080``, ``SUB``,
``token`` (a Contributor's over SUB, for the Python blocks) and ``copy`` (the work a
producer does), and the server's home as ``OPSTATUS_HOME`` (for ``opstatus token`` and the
CLI's local tokens).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import SUB_A, ServerProcess

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ALL_PAGES = [
    "README.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")),
]
SKIP = re.compile(r"<!--\s*example:\s*not run")
STREAMS = re.compile(r"<!--\s*example:\s*streams")
SERVER_FLAGS = re.compile(r"<!--\s*example server:\s*(.+?)\s*-->")
MEANWHILE = re.compile(r"<!--\s*example:.*\bmeanwhile:\s*(.+?)\s*-->")
#: The longest a streaming command may take to print the output its page shows.
STREAM_SECONDS = 20.0
FENCE = re.compile(r"^```(\w*)\s*$")
MARK = "@@opstatus-docs-step"
DEFAULT_URL = "http://127.0.0.1:8080"


@dataclass
class Block:
    language: str
    lines: list[str]
    line_number: int
    streams: bool = False
    meanwhile: str | None = None


@dataclass
class Step:
    command: str
    line_number: int
    expected: list[str] = field(default_factory=list)
    streams: bool = False


def blocks(text: str) -> list[Block]:
    """The page's fenced blocks that run: ``sh`` and ``python``, unless marked not run."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start, language = i, match[1]
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        if language in ("sh", "python") and not SKIP.search(before):
            streams = STREAMS.search(before) is not None
            meanwhile = MEANWHILE.search(before)
            found.append(
                Block(
                    language,
                    lines[start + 1 : end],
                    start + 2,
                    streams,
                    meanwhile[1] if meanwhile else None,
                )
            )
        i = end + 1
    return found


def steps(block: Block) -> list[Step]:
    """Commands (with their continuation lines) and the output shown right under each."""
    found: list[Step] = []
    showing = continued = False
    for offset, line in enumerate(block.lines):
        stripped = line.strip()
        if continued:
            found[-1].command += "\n" + line
            continued = stripped.endswith("\\")
            continue
        if not stripped:
            showing = False
        elif stripped.startswith("#"):
            if showing:
                found[-1].expected.append(stripped[1:])
        else:
            found.append(Step(line, block.line_number + offset, streams=block.streams))
            showing, continued = True, stripped.endswith("\\")
    return found


def matches(expected: list[str], actual: str) -> bool:
    """Whitespace aside, with ``...`` for any text."""
    shown = "".join("".join(line.split()) for line in expected)
    pattern = ".*?".join(re.escape(part) for part in shown.split("..."))
    return re.fullmatch(pattern, "".join(actual.split()), re.DOTALL) is not None


def filled(text: str, server: ServerProcess) -> str:
    return text.replace(DEFAULT_URL, server.url)


def background(step: Step, i: int) -> str:
    """Bash that runs a streaming step in the background, its output to ``$DOCS_OUT/i``,
    until it ends by itself (then its exit status counts) or ``$DOCS_OUT/i.stop`` appears."""
    out, stop = f'"$DOCS_OUT/{i}"', f'"$DOCS_OUT/{i}.stop"'
    return "\n".join(
        [
            f"( exec {step.command}",
            f") > {out} &",
            "docs_pid=$!",
            f"while kill -0 $docs_pid 2>/dev/null && [ ! -e {stop} ]; do sleep 0.05; done",
            f"if [ -e {stop} ]; then kill $docs_pid 2>/dev/null || true; wait $docs_pid || true;",
            "else wait $docs_pid; fi",
            f"cat {out}",
        ]
    )


def stop_streams(
    found: dict[int, Step], folder: Path, server: ServerProcess, process: subprocess.Popen[str]
) -> None:
    """Stop each streaming step once its output matches what the page shows."""
    for i, step in found.items():
        out, stop = folder / str(i), folder / f"{i}.stop"
        while not out.exists():
            if process.poll() is not None:
                return
            time.sleep(0.05)
        deadline = time.monotonic() + STREAM_SECONDS
        expected = [filled(e, server) for e in step.expected]
        while time.monotonic() < deadline:
            if matches(expected, out.read_text(encoding="utf-8", errors="replace")):
                break
            time.sleep(0.05)
        stop.touch()


def run_shell(page: str, found: list[Block], server: ServerProcess) -> None:
    shell = [block for block in found if block.language == "sh"]
    all_steps = [step for block in shell for step in steps(block)]
    if not all_steps:
        return
    script = ["set -eo pipefail"]
    streaming = {i: step for i, step in enumerate(all_steps) if step.streams and step.expected}
    i = 0
    for block in shell:
        if block.meanwhile:
            meanwhile = filled(block.meanwhile, server)
            script += [f"( sleep 1; {meanwhile} ) > /dev/null &", "docs_meanwhile=$!"]
        for step in steps(block):
            command = background(step, i) if i in streaming else step.command
            script += [f"printf '\\n{MARK} {i}\\n'", filled(command, server)]
            i += 1
        if block.meanwhile:
            script.append("wait $docs_meanwhile")
    bin_dir = str(Path(sys.executable).parent)
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OPSTATUS_")},
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "OPSTATUS_HOME": str(server.home),
            "OPSTATUS_ENDPOINT": server.url,
            "SUB": SUB_A,
            "DOCS_OUT": folder,
        }
        process = subprocess.Popen(
            ["bash", "-c", "\n".join(script)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        stopper = threading.Thread(
            target=stop_streams, args=(streaming, Path(folder), server, process), daemon=True
        )
        stopper.start()
        try:
            stdout, stderr = process.communicate(timeout=120)
        finally:
            process.kill()
    outputs = re.split(rf"^{MARK} (\d+)\n", stdout, flags=re.MULTILINE)[1:]
    by_step = {int(outputs[i]): outputs[i + 1] for i in range(0, len(outputs), 2)}
    if process.returncode != 0:
        last = all_steps[max(by_step)] if by_step else all_steps[0]
        pytest.fail(
            f"{page}:{last.line_number}: `{last.command}` exited {process.returncode}\n"
            f"stdout: {by_step.get(max(by_step, default=0), '')}\nstderr: {stderr}"
        )
    for i, step in enumerate(all_steps):
        if step.expected:
            actual = by_step[i]
            assert matches([filled(e, server) for e in step.expected], actual), (
                f"{page}:{step.line_number}: `{step.command}` printed\n{actual}\n"
                f"but the page shows\n" + "\n".join(step.expected)
            )


def chunks(block: Block) -> list[Step]:
    """A Python block cut after each statement whose output it shows: comment lines at the
    start of the line right under code (no blank line between), as in the shell blocks. Each
    chunk is whole statements, run in turn, and what it prints must match."""
    found: list[Step] = []
    code: list[str] = []
    start = 0
    showing = False
    for offset, line in enumerate(block.lines):
        before = block.lines[offset - 1] if offset else ""
        under_code = before.strip() != "" and not before.lstrip().startswith("#")
        if line.startswith("#") and (showing or under_code):
            if not showing:
                found.append(Step("\n".join(code), block.line_number + start))
                code, showing = [], True
            found[-1].expected.append(line[1:])
            start = offset + 1
            continue
        if not code:
            start = offset
        showing = False
        code.append(line)
    if any(line.strip() for line in code):
        found.append(Step("\n".join(code), block.line_number + start))
    return found


def run_python(page: str, found: list[Block], server: ServerProcess) -> None:
    namespace: dict[str, object] = {
        "__name__": "__docs__",
        "SUB": SUB_A,
        "token": server.token("Contributor", f"/subscriptions/{SUB_A}"),
        "copy": lambda chunk: None,
    }
    for block in found:
        if block.language != "python":
            continue
        for chunk in chunks(block):
            code = "\n" * (chunk.line_number - 1) + filled(chunk.command, server)
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    exec(compile(code, page, "exec"), namespace)  # noqa: S102
            except Exception as exc:  # noqa: BLE001 - the page's line, then the error
                pytest.fail(f"{page}:{chunk.line_number}: the Python block raised {exc!r}")
            if chunk.expected:
                expected = [filled(e, server) for e in chunk.expected]
                assert matches(expected, printed.getvalue()), (
                    f"{page}:{chunk.line_number}: the Python code printed\n"
                    f"{printed.getvalue()}\nbut the page shows\n" + "\n".join(chunk.expected)
                )


def runnable(page: str) -> list[Block]:
    return blocks((ROOT / page).read_text(encoding="utf-8"))


#: The pages with an example to run (the others hold none, or only ones marked not run).
PAGES = [page for page in ALL_PAGES if runnable(page)]


def test_the_readme_and_the_cli_reference_have_examples_to_run() -> None:
    assert {"README.md", "docs/cli.md", "docs/security.md"} <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_the_examples_run_as_written(page: str, home: Path) -> None:
    found = runnable(page)
    flags = SERVER_FLAGS.search((ROOT / page).read_text(encoding="utf-8"))
    extra = shlex.split(flags[1]) if flags else []
    server = ServerProcess(home, "--retry-after", "1", *extra).start()
    try:
        run_shell(page, found, server)
        run_python(page, found, server)
    finally:
        server.stop()


def test_a_python_block_is_cut_after_each_output_it_shows() -> None:
    lines = ["x = 1", "", "# a note", "print(x)", "# 1"]
    lines += ["with open(p) as f:", "    print(2)", "# 2"]
    found = chunks(Block("python", lines, 10))
    assert [(c.command, c.expected, c.line_number) for c in found] == [
        ("x = 1\n\n# a note\nprint(x)", [" 1"], 10),
        ("with open(p) as f:\n    print(2)", [" 2"], 15),
    ]


def test_a_shown_output_that_differs_fails() -> None:
    block = Block("sh", ["echo hello", "# hello", "", "# an explanation", "echo x  # note"], 1)
    found = steps(block)
    assert [(s.command, s.expected) for s in found] == [
        ("echo hello", [" hello"]),
        ("echo x  # note", []),
    ]
    assert matches([" hello"], "hello\n")
    assert not matches([" goodbye"], "hello\n")
    assert matches(['{"id":"...","name":"job-1"}'], '{"id": "/x/y", "name": "job-1"}')


#: ``<!-- example: not run (an excerpt of FILE, ...) -->``: the block is FILE's text.
EXCERPT = re.compile(r"<!--\s*example:\s*not run \(an excerpt of ([\w./-]+)")


def excerpts(page: str) -> list[tuple[str, list[str], int]]:
    """The blocks of ``page`` marked as excerpts: their file, lines and first line number."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        marked = EXCERPT.search(line)
        if marked and i + 1 < len(lines) and FENCE.match(lines[i + 1]):
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
            found.append((marked[1], lines[i + 2 : end], i + 3))
    return found


def is_excerpt(block: list[str], text: str) -> bool:
    """Whether ``block`` is consecutive lines of ``text``, as written (one indentation of
    them all aside)."""
    lines = text.splitlines()
    for start in range(len(lines) - len(block) + 1):
        first = lines[start]
        indent = first[: len(first) - len(first.lstrip())]
        if all(lines[start + k] == (indent + line if line else "") for k, line in enumerate(block)):
            return True
    return False


EXCERPTS = [(page, *found) for page in ALL_PAGES for found in excerpts(page)]


def test_the_providers_and_celery_pages_show_excerpts_of_the_examples_the_tests_run() -> None:
    assert {(page, file) for page, file, _, _ in EXCERPTS} >= {
        ("docs/providers.md", "docs/examples/provider_app.py"),
        ("docs/celery.md", "docs/examples/celery_app.py"),
    }


@pytest.mark.parametrize(("page", "file", "block", "line"), EXCERPTS)
def test_an_excerpt_is_its_files_text(page: str, file: str, block: list[str], line: int) -> None:
    assert block, f"{page}:{line}: an empty excerpt"
    text = (ROOT / file).read_text(encoding="utf-8")
    assert is_excerpt(block, text), f"{page}:{line}: the block is not the text of {file}"


def test_an_excerpt_that_drifts_fails() -> None:
    text = "def f():\n    a = 1\n\n    return a\n"
    assert is_excerpt(["a = 1", "", "return a"], text)
    assert not is_excerpt(["a = 2", "", "return a"], text)
    assert not is_excerpt(["a = 1", "return a"], text)  # a line left out
