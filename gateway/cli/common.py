"""What every CLI module shares: the context (settings loaded once) and the error mapping.

Library code raises GatewayError subclasses; only here do they become one readable line and a
non-zero exit code (2 for configuration problems, 1 otherwise), never a traceback.

The store and the settings loader are imported when a command first asks for them, not when
the CLI starts: `--help` needs neither. Commands open the store (`ctx.db()`) before they import
the store's verbs, so that sqlite-utils is imported the CLI's way (gateway/store/lean.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from gateway.errors import ConfigError, GatewayError

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.store.db import Database


class Context:
    def __init__(self, config_path: str):
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from gateway.config import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings

    def db(self) -> Database:
        """A connection to the store (migrated), for commands that read or queue work."""
        from gateway.store.lean import import_sqlite_utils_without_numpy

        import_sqlite_utils_without_numpy()
        from gateway.store.db import connect

        return connect(self.settings.db_path)


pass_ctx = click.make_pass_decorator(Context)


def friendly_errors(fn: Callable) -> Callable:
    """Turn the gateway's own errors into one line each: exit code 2 for configuration
    problems (one `error:` line per problem), 1 for the others."""

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
        except BrokenPipeError:
            raise  # the reader left (`| head`): click ends quietly, no "Broken pipe" line
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}") from None

    return wrapper


def daemon_pid(settings: Settings) -> int | None:
    """The pid of the daemon serving this state_dir, or None when none runs.

    The daemon holds an flock(2) on `settings.lock_path` for as long as it runs and writes its
    pid into the file; a lock we can take ourselves means nobody holds it. Read-only: the
    probe's shared lock is dropped at once and nothing is created.
    """
    import fcntl
    import os

    try:
        fd = os.open(settings.lock_path, os.O_RDONLY)
    except OSError:
        return None  # never started here (or the folder is not ours to read)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def daemon_line(settings: Settings) -> str:
    """One line for humans: whether the daemon runs on this state_dir, and its pid."""
    pid = daemon_pid(settings)
    if pid is None:
        return f"not running (nothing holds {settings.lock_path}; start `mail-gateway serve`)"
    return f"running (pid {pid})" if pid else "running"


def credentials_dir_option(fn: Callable) -> Callable:
    """`--credentials-dir DIR`: read the config's `*_file` credentials from DIR, as the unit's
    LoadCredential= hands them to the daemon in $CREDENTIALS_DIRECTORY (systemd.exec(5)), so
    an admin shell sees what the service sees (e.g. /etc/mail-gateway/credentials, as root)."""

    def use(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            import os

            os.environ["CREDENTIALS_DIRECTORY"] = value

    return click.option(
        "--credentials-dir",
        metavar="DIR",
        type=click.Path(exists=True, file_okay=False),
        expose_value=False,
        is_eager=True,
        callback=use,
        help="Read *_file credentials from DIR, as the unit's LoadCredential= provides them.",
    )(fn)
