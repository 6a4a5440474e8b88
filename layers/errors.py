"""Define the errors raised by the layers package."""

from __future__ import annotations


class DistrictDataError(ValueError):
    """A district data folder is missing a file or holds invalid data."""


class DistrictMismatchError(ValueError):
    """The store was made for another district than the one the app or command was given."""


class PlanDataError(ValueError):
    """A plan data file (targets, key projects, tasks) is missing or holds invalid data."""


class EncryptionKeyError(ValueError):
    """The encryption key is invalid or differs from the one the data were encrypted with."""


class StaleVersionError(RuntimeError):
    """An update carried a version older than the stored one: someone else changed the row first."""


class WorkflowError(ValueError):
    """A status change does not follow the layer's workflow."""


class NotFoundError(LookupError):
    """No row with the given layer and id exists."""


class UnreadableFileError(ValueError):
    """An imported file is empty, damaged or not of the format its extension says."""


class FileLimitError(ValueError):
    """An imported file is over an import limit (decompressed size, compression ratio, rows, columns, cells)."""


class ValidationError(ValueError):
    """An imported layer table breaks one or more rules; the message lists every problem."""


class AccessDeniedError(PermissionError):
    """The caller's role or scope does not allow this access to personal data."""
