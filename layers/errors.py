"""Define the errors raised by the layers package."""

from __future__ import annotations


class DistrictDataError(ValueError):
    """A district data folder is missing a file or holds invalid data."""
