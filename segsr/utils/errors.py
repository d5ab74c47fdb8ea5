"""One exception type for every problem a user can fix, printed as a single line."""

WORKER_TRACEBACK = '\nOriginal Traceback'


class SegSRError(Exception):
    """A user-facing error: the message names the problem and the fix, on one line.

    torch's DataLoader re-raises an error of a worker process as the same type, built from a message that
    holds the worker's whole traceback; only its last line, the original message, is kept, so an error in a
    worker reads the same as one in the main process.
    """

    def __init__(self, message: str = '') -> None:
        if WORKER_TRACEBACK in message:
            message = message.rstrip().rsplit('\n', 1)[-1].split(': ', 1)[-1]
        super().__init__(message)
