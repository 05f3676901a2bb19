"""How every CLI command prints: the one `--json` option and the `emit_*` functions.

Listing commands take --json; everything else is a table or key/value lines for humans.
Commands print one-line confirmations with click.echo; the CLI is the only room that prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

import click

F = TypeVar("F", bound=Callable[..., Any])

JSON_HELP = "Print JSON (stable keys)."


@overload
def output_options(fn: F) -> F: ...
@overload
def output_options(*, help: str) -> Callable[[F], F]: ...
def output_options(fn: F | None = None, *, help: str = JSON_HELP) -> F | Callable[[F], F]:
    """The `--json` flag (parameter `as_json`): `@output_options`, or
    `@output_options(help=...)` where the JSON has a shape worth naming."""
    option = click.option("--json", "as_json", is_flag=True, help=help)
    return option(fn) if fn is not None else option


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def emit_table(rows: Sequence[dict], columns: Sequence[str], empty: str) -> None:
    if not rows:
        click.echo(empty)
        return
    from tabulate import tabulate

    click.echo(
        tabulate(
            [[_cell(r.get(c)) for c in columns] for r in rows],
            headers=list(columns),
            tablefmt="simple",
        )
    )


def emit_pairs(data: dict, indent: int = 0, width: int | None = 60) -> None:
    """`key: value` lines, nested dicts indented; values longer than `width` characters are
    cut with "…" (None: never, for a command that shows one thing in full)."""
    pad = " " * indent
    for k, v in data.items():
        if isinstance(v, dict):
            click.echo(f"{pad}{k}:")
            if v:
                emit_pairs(v, indent + 2, width)
            else:
                click.echo(f"{pad}  (none)")
        else:
            click.echo(f"{pad}{k}: {_cell(v, width)}")


def _cell(v: Any, width: int | None = 60) -> str:
    if v is None:
        return "-"
    s = str(v).replace("\n", " ")
    return s if width is None or len(s) <= width else s[: width - 1] + "…"
