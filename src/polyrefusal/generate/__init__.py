from .base import GENERATORS, Generator, ModelSpec  # noqa: F401
