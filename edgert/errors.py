"""The one error hierarchy of edgert.

Library code raises these; only ``edgert.cli`` turns them into a message and an exit code.
Every error carries a one-line message naming the problem and a hint naming the fix.
"""
from __future__ import annotations


class EdgertError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class UserError(EdgertError):
    """Bad input from the user: a model file, an option, a data set. Exit code 2."""

    exit_code = 2


class ModelFormatError(UserError):
    """The file is not a readable model (truncated, corrupt, wrong format)."""


class UnsupportedError(UserError):
    """The model uses an op, dtype or quantization scheme edgert cannot compile."""


class ResourceError(UserError):
    """The compiled model does not fit the memory the user or the board allows."""


class DeviceError(EdgertError):
    """A board or its transport failed: no port, no answer, wrong model, timeout. Exit code 3."""

    exit_code = 3


class ValidationFailed(EdgertError):
    """The device disagreed with the reference beyond the given thresholds. Exit code 4."""

    exit_code = 4


class ToolchainError(EdgertError):
    """A compiler or emulator edgert needs is missing or failed. Exit code 2: the fix is on
    the user's machine (install it, or run scripts/setup.sh)."""

    exit_code = 2


#: The hints for a model file whose fields no converter writes (damaged or hand-edited).
DAMAGED_MODEL = "the file is damaged or was written by a broken converter: re-export it"
DAMAGED_ONNX = "the file is damaged or was written by a broken exporter: export it again"
