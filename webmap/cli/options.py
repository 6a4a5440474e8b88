"""Option types shared by the commands."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import click


class LateChoice(click.Choice):
    """A ``click.Choice`` whose choices are read when the option is first used, not when the CLI is built.

    The roles live in ``layers.privacy``, which imports geopandas: reading them only when a command's
    option is parsed or its help shown keeps ``accessplan --help`` quick.

    Parameters
    ----------
    load
        Returns the choices (called once, at first use).
    case_sensitive
        As for ``click.Choice``.
    """

    def __init__(self, load: Callable[[], Iterable[str]], case_sensitive: bool = True) -> None:
        self._load = load
        self._choices: tuple[str, ...] | None = None
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        """The choices, read on first use."""
        if self._choices is None:
            self._choices = tuple(self._load())
        return self._choices


def all_roles() -> tuple[str, ...]:
    """Return every role (``layers.privacy.ROLES``)."""
    from layers.privacy import ROLES

    return tuple(ROLES)


def staff_roles() -> tuple[str, ...]:
    """Return the staff roles (``layers.privacy.STAFF_ROLES``)."""
    from layers.privacy import STAFF_ROLES

    return tuple(STAFF_ROLES)
