"""Metrics over judged answers."""
