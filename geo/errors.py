"""Define the errors raised by the geo package."""

from __future__ import annotations


class DatumError(ValueError):
    """A coordinate datum name is not one of the supported datums."""
