"""Errors that foveal raises for bad input.

Every message is one line that names what was expected and what arrived, for example
``expected a directory with one sub-folder per class, got 'data/' with no sub-folders``.
The CLI prints such errors as ``foveal: error: <message>`` and exits with status 2.
"""


class FovealError(Exception):
    """Base class for user-facing errors: bad input, missing data, incompatible files."""


class DataError(FovealError, ValueError):
    """A dataset, image or annotation file is missing, malformed or inconsistent."""


class ChecksumError(DataError):
    """A downloaded or cached file does not have the expected checksum."""


class CheckpointError(FovealError, ValueError):
    """A checkpoint is unreadable, from another model, or from an incompatible version."""


class ConfigError(FovealError, ValueError):
    """A configuration value or name (model, dataset, preset) is not valid."""


class TrainingError(FovealError, RuntimeError):
    """Training cannot continue, for example because the loss became NaN or infinite."""


class GeometryError(FovealError, ValueError):
    """Geometric input is malformed (wrong shape, NaN, too few points) or degenerate
    (collinear points, pure rotation, all points behind a camera)."""


class DetectionError(FovealError, ValueError):
    """Boxes, detections or annotations are malformed (wrong shape, negative size, unknown id)."""
