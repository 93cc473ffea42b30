"""The project's small multiple-choice capability set (see README.md)."""
