"""The error type for a user's mistake: CLIs print its message on one line
and exit non-zero, without a traceback."""


class UserError(Exception):
    """Bad input from the user; the message says what was expected, what was
    received and what to do."""
