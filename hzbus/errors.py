"""Errors that end a command with a clear message instead of a traceback."""


class UserError(Exception):
    """Something the operator can fix: bad input, a service that is down, a wrong flag.

    ``hzbus`` prints the message (no traceback) and exits with ``exit_code``.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
