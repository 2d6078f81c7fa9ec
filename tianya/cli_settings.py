"""The settings of a ``tianya`` command, and how every command reports mistakes and progress.

The ``tianya`` group (:mod:`tianya.cli`) reads :class:`~tianya.settings.Settings` from the
environment as it starts, so a bad value stops every command with a one-line error naming
the variable (exit status 2, as click's usage errors), before any work. A command takes
them with :func:`command_settings`, its options overriding the matching fields.

A user's mistake ends a command with one line, ``Error: <message>``, and a non-zero exit
status, never a traceback: :func:`user_message` says which exceptions are such mistakes
(our errors, bad settings, a path that cannot be read or written); the group turns them
into :class:`UserError` unless ``tianya --debug`` asked for the traceback. Anything else is
a bug and keeps its traceback. Long commands show :func:`progress` on stderr.
"""

from __future__ import annotations

import os
import sys

import click

from layers.errors import TianyaError
from tianya.settings import Settings, SettingsError, use

__all__ = [
    "DEBUG",
    "QUIET",
    "BadSettings",
    "DataMissing",
    "UserError",
    "command_settings",
    "existing_data",
    "load_settings",
    "progress",
    "showing_progress",
    "user_message",
    "writable",
]

#: ``ctx.meta`` keys of the group's ``--debug`` and ``--quiet`` options.
DEBUG = "tianya.debug"
QUIET = "tianya.quiet"
#: The OSErrors that are about a path the user named, whatever their text.
_PATH_ERRORS = (
    FileExistsError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


class UserError(click.ClickException):
    """A user's mistake: ``Error: <message>`` and exit status 1, no traceback."""

    exit_code = 1


class DataMissing(click.ClickException):
    """``--data`` (or ``$TIANYA_DATA``) names a GeoPackage that does not exist (status 2)."""

    exit_code = 2


def user_message(err: BaseException) -> str | None:
    """The one line telling the user what went wrong, or None when ``err`` is a bug.

    Our errors (:class:`~layers.errors.TianyaError`, hence
    :class:`~analytics.errors.AnalyticsError`) and bad settings carry a message written for
    users; an OSError is a user's mistake when it is about a path (not found, exists, not
    a directory, no permission, or any error naming its file).

    Examples
    --------
    >>> user_message(FileNotFoundError(2, "No such file or directory", "/no/r.html"))
    '/no/r.html: No such file or directory'
    >>> user_message(KeyError("x")) is None
    True
    """
    if isinstance(err, TianyaError | SettingsError):
        return str(err)
    if isinstance(err, OSError) and (isinstance(err, _PATH_ERRORS) or err.filename):
        if err.filename is None:
            return str(err)
        names = f"{err.filename}" + (f" -> {err.filename2}" if err.filename2 else "")
        return f"{names}: {err.strerror or err}"
    return None


def progress(total: int, desc: str, unit: str = "step", quiet: bool = False):
    """A tqdm bar on stderr, silent with ``quiet``, ``tianya --quiet`` or stderr not a TTY.

    Update it with ``bar.update()``; ``bar.set_postfix_str(what)`` names the running step.
    """
    from tqdm import tqdm

    off = not showing_progress(quiet)
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=off, leave=False)


def showing_progress(quiet: bool = False) -> bool:
    """Whether :func:`progress` shows a bar (for libraries taking ``progress=``)."""
    ctx = click.get_current_context(silent=True)
    group_quiet = ctx is not None and ctx.meta.get(QUIET, False)
    return not (quiet or group_quiet) and sys.stderr.isatty()


def existing_data(settings: Settings) -> str:
    """The settings' store location; a GeoPackage path must exist (:class:`DataMissing`).

    Opening a missing GeoPackage would create an empty one and fail later, naming a layer.
    """
    data = settings.store_location()
    if "://" not in data and not os.path.isfile(data):
        raise DataMissing(
            f"GeoPackage {data} does not exist: check --data or $TIANYA_DATA "
            f"(`tianya generate -o {data}` writes the sample there)"
        )
    return data


def writable(path: str | None) -> str | None:
    """``path`` if a file can be written there (its folder exists and is writable).

    Checked before a command works, so a typo in ``--output`` does not cost the whole run.
    """
    if path is None:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UserError(f"{path} is a folder: give a file name for the output")
    if not os.path.isdir(folder):
        raise UserError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UserError(f"cannot write {path}: folder {folder} is not writable")
    return path


class BadSettings(click.ClickException):
    """A setting that cannot be used: ``Error: <message>`` and exit status 2."""

    exit_code = 2


def load_settings(defaults: dict | None = None, **overrides) -> Settings:
    """The environment's settings (``defaults`` for unset variables, then ``overrides``), made
    this process's (:func:`tianya.settings.use`).

    Raises
    ------
    BadSettings
        Naming every bad variable and its value.
    """
    try:
        return use(Settings.from_env(defaults=defaults, **overrides))
    except SettingsError as err:
        raise BadSettings(str(err)) from None


def command_settings(defaults: dict | None = None, **overrides) -> Settings:
    """The settings of the running command, with the options in ``overrides`` (attribute names;
    None means "not given") in place of the environment's values.

    The group read them as it started; a command invoked on its own reads them now.
    ``defaults`` (for settings whose variable is unset) need the environment read again.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    ctx = click.get_current_context(silent=True)
    base = ctx.find_object(Settings) if ctx is not None else None
    if base is None or defaults:
        return load_settings(defaults, **given)
    try:
        return use(base.replace(**given)) if given else base
    except SettingsError as err:
        raise BadSettings(str(err)) from None
