"""The single error type nbsim raises for bad input.

The CLI prints ``str(error)`` as one line and exits non-zero; library callers can
catch it as a ``ValueError``.
"""


class NbsimError(ValueError):
    """Bad input: a flag, a value or a file. The message names which."""

    def __init__(self, message, exit_code=2):
        super().__init__(message)
        self.exit_code = exit_code


class NbsimWarning(UserWarning):
    """Something nbsim did that the caller may not expect (the command line prints
    these on stderr; the Python API issues them as warnings)."""
