"""Errors a person can act on. Each message says what is wrong and what to do about it."""

from __future__ import annotations


class WeGenError(Exception):
    """Base class: the message is shown to the user as it is."""


class ModelFolderError(WeGenError):
    """A model folder is missing a file, has a corrupt file, or does not match its config."""


class ImageInputError(WeGenError):
    """An input image cannot be used (unreadable, truncated, too large, ...)."""


class PromptError(WeGenError):
    """A request cannot be turned into a prompt (empty, nothing to act on, ...)."""


class SettingsError(WeGenError):
    """A generation setting is outside what the engine allows (see `engine.api.SETTING_RANGES`)."""


class OutputPathError(WeGenError):
    """An output file cannot be written where asked (a folder, no such folder, read-only, ...)."""


class ModelOutputError(WeGenError, ValueError):
    """The model's output cannot become an image (NaN or infinite pixels, say)."""


class RuntimeChoiceError(WeGenError):
    """A device, precision or backend choice is impossible on this machine."""


class Cancelled(WeGenError):
    """The user cancelled the request; nothing was produced after the cancel."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)
