"""The lab's own error: every error a person can cause (a bad setting, a missing file, a model that does not
load, a run that cannot start) derives from LabError, so one `except LabError` turns any of them into one
readable line (the CLI's `error: ...` with exit 2, a message in the tab) instead of a traceback.

    from labs.errors import LabError
    class DataError(LabError): ...
"""
from __future__ import annotations


class LabError(Exception):
    """Something the person can fix; the message says what was wrong and, where it can, what to do."""

    def line(self) -> str:
        """The message on one line (for the CLI's `error: ...`)."""
        return " ".join(str(self).split())
