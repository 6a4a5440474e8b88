"""Define the errors raised by the layers package."""

from __future__ import annotations


class DistrictDataError(ValueError):
    """A district data folder is missing a file or holds invalid data."""


class PlanDataError(ValueError):
    """A plan data file (targets, key projects, tasks) is missing or holds invalid data."""
