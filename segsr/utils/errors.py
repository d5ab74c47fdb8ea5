"""One exception type for every problem a user can fix, printed as a single line."""


class SegSRError(Exception):
    """A user-facing error: the message names the problem and the fix, on one line."""
