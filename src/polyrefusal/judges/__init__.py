from .base import JUDGES, Judge, Verdict  # noqa: F401
