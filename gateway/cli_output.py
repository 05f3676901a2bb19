"""How every CLI command prints: one `output_options` bundle, one `emit` function.

Listing commands take --json; everything else is a table or key/value lines for humans.
Nothing else in the CLI prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click
from tabulate import tabulate


def output_options(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys).")(fn)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def emit_table(rows: Sequence[dict], columns: Sequence[str], empty: str) -> None:
    if not rows:
        click.echo(empty)
        return
    click.echo(
        tabulate(
            [[_cell(r.get(c)) for c in columns] for r in rows],
            headers=list(columns),
            tablefmt="simple",
        )
    )


def emit_pairs(data: dict, indent: int = 0) -> None:
    pad = " " * indent
    for k, v in data.items():
        if isinstance(v, dict):
            click.echo(f"{pad}{k}:")
            if v:
                emit_pairs(v, indent + 2)
            else:
                click.echo(f"{pad}  (none)")
        else:
            click.echo(f"{pad}{k}: {_cell(v)}")


def _cell(v: Any, width: int = 60) -> str:
    if v is None:
        return "-"
    s = str(v).replace("\n", " ")
    return s if len(s) <= width else s[: width - 1] + "…"
