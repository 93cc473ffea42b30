from .base import TRANSLATORS, Translator  # noqa: F401
