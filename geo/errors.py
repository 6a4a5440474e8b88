"""Define the errors raised by the geo package."""

from __future__ import annotations


class DatumError(ValueError):
    """A coordinate datum name is not one of the supported datums."""


class ProfileError(ValueError):
    """A travel profile table is malformed."""


class NetworkError(ValueError):
    """A road network file cannot be turned into a usable graph."""


class SnapError(ValueError):
    """Points cannot be snapped to the network."""


class DemError(ValueError):
    """A digital elevation model cannot be read or used."""
