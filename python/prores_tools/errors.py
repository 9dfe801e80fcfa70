"""ReportError: a problem with the user's input that the report states in one line (no traceback)."""


class ReportError(Exception):
    """Printed as 'prores report: MESSAGE'; the command exits 1."""
