from .base import GENERATORS, Generator, ModelSpec, Prompt  # noqa: F401
