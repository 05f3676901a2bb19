"""What every CLI module shares: the context (settings loaded once) and the error mapping.

Its own module so that cli.py and the cli_*.py families import it without importing each
other. Library code raises GatewayError subclasses; only here do they become one readable
line and a non-zero exit code (2 for configuration problems), never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
from sqlite_utils import Database

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError, GatewayError
from gateway.store.db import connect


class Context:
    def __init__(self, config_path: str):
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def db(self) -> Database:
        return connect(self.settings.db_path)


pass_ctx = click.make_pass_decorator(Context)


def friendly_errors(fn: Callable) -> Callable:
    """Turn the gateway's own errors into one line each and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            for line in exc.problems:
                click.echo(f"error: {line}", err=True)
            raise SystemExit(2) from None
        except GatewayError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}") from None

    return wrapper
