"""The settings of a ``tianya`` command: read and checked once, before the command works.

The ``tianya`` group (:mod:`tianya.cli`) reads :class:`~tianya.settings.Settings` from the
environment as it starts, so a bad value stops every command with a one-line error naming
the variable (exit status 2, as click's usage errors), before any work. A command takes
them with :func:`command_settings`, its options overriding the matching fields.
"""

from __future__ import annotations

import click

from tianya.settings import Settings, SettingsError, use

__all__ = ["BadSettings", "command_settings", "load_settings"]


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
