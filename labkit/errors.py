"""One exception type for everything a learner can fix, with the fix attached.

A stack trace tells a learner *where* something failed; a LabkitError also tells them *what to
do next*. The command line prints ``error:`` and ``next:`` lines instead of a traceback, and in
a notebook the message reads the same.
"""


class LabkitError(RuntimeError):
    """A failure the user can act on: ``what`` went wrong and the ``next_step`` to take."""

    def __init__(self, what: str, next_step: str = ""):
        self.what = what
        self.next_step = next_step
        message = what if not next_step else f"{what}\n  next: {next_step}"
        super().__init__(message)
