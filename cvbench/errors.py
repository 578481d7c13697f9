"""Errors cvbench raises for bad input; the CLI prints them without a traceback."""

from __future__ import annotations


class CvbenchError(Exception):
    """A problem the user can fix: the message names the culprit and what was expected."""


class UnknownPluginError(CvbenchError, KeyError):
    """A plugin name that no installed package registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginConflictError(CvbenchError):
    """Two packages registered the same name for the same kind."""


class PluginError(CvbenchError):
    """A plugin's factory raised, or built the wrong kind of object: the message names the plugin, its kind,
    its package and entry point, and the original error."""


class DatasetNotFoundError(CvbenchError, FileNotFoundError):
    """A dataset folder or file is missing; the message says what to download."""


class SpecError(CvbenchError, ValueError):
    """Options that are invalid or cannot fit together."""


class CheckpointError(CvbenchError):
    """A checkpoint that does not fit the model it is loaded into."""


class TrainingDivergedError(CvbenchError, FloatingPointError):
    """A NaN or infinite loss."""


class DatasetFormatError(CvbenchError, ValueError):
    """A dataset file that is there but does not parse: the message names the file and line."""


def error_message(exc: BaseException) -> str:
    """The error's message; for one raised in a DataLoader worker (a corrupt image), without the worker's traceback.

    torch re-raises a worker's exception as ``type(exc)(text)``, the text
    holding the worker's whole traceback, whose last entry is
    ``module.Class: message``.
    """
    text = str(exc)
    marker = f"\n{type(exc).__module__}.{type(exc).__qualname__}: "
    if text.startswith("Caught ") and "Original Traceback" in text and marker in text:
        return text[text.rindex(marker) + len(marker):].rstrip()
    return text
