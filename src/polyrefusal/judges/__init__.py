from .base import JUDGES, LABELS, Judge, Verdict, coverage  # noqa: F401
