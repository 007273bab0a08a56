"""Write docs/cli.md from the ``opstatus`` commands' own ``--help``, so the reference cannot
drift from the code: ``python scripts/cli_reference.py`` rewrites it, ``--check`` exits 1 when
it is out of date (tests/test_cli_reference.py runs the check)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import click

from opstatus.cli import main
from opstatus.cli_common import EXIT_CODE_TABLE

TARGET = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
WIDTH = 100

HEADER = """\
# Command-line reference

Generated from each command's `--help` by `python scripts/cli_reference.py` (a test fails
when this page and the commands disagree). Every command takes `-h`/`--help`.

## Exit codes

The same for every command, and at the end of each one's `--help`:

| code | meaning |
| --- | --- |
{exit_codes}

## Shell completion

Click completes commands, options and choices. Add one line to your shell's start-up file
(the command must be the installed `opstatus`, on the PATH):

```sh
eval "$(_OPSTATUS_COMPLETE=bash_source opstatus)"    # ~/.bashrc
complete -p opstatus                                 # bash now completes opstatus
# complete -o nosort -F _opstatus_completion opstatus
```

```
eval "$(_OPSTATUS_COMPLETE=zsh_source opstatus)"     # ~/.zshrc
_OPSTATUS_COMPLETE=fish_source opstatus | source     # ~/.config/fish/completions/opstatus.fish
```

Or write the script once to a file and source that, which starts shells faster:
`_OPSTATUS_COMPLETE=bash_source opstatus > ~/.opstatus-complete.bash`.

## Commands
"""


def _commands(
    command: click.Command, path: list[str], parent: click.Context | None
) -> list[tuple[list[str], click.Context]]:
    settings = {
        key: value
        for key, value in (command.context_settings or {}).items()
        if key not in ("terminal_width", "max_content_width")
    }
    ctx = click.Context(
        command,
        info_name=path[-1],
        parent=parent,
        terminal_width=WIDTH,
        max_content_width=WIDTH,
        **settings,
    )
    found = [(path, ctx)]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            found += _commands(command.commands[name], [*path, name], ctx)
    return found


def render() -> str:
    rows = "\n".join(f"| `{code}` | {meaning} |" for code, meaning in EXIT_CODE_TABLE)
    parts = [HEADER.replace("{exit_codes}", rows)]
    for path, ctx in _commands(main, ["opstatus"], None):
        title = " ".join(path)
        parts.append(f"\n### `{title}`\n\n```text\n{ctx.command.get_help(ctx).rstrip()}\n```\n")
    return "".join(parts)


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/cli.md is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python scripts/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
