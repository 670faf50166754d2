"""Fixtures and hooks shared by the hostile-input tests.

The fuzz and truncation tests keep their shared pieces in fuzz_support.py (a module of its own
name, imported by test modules); this file only registers its fixture and its summary of fuzz
executions. The pipeline, canary and crash tests keep their detectors in hostile_guards.py.
"""

from __future__ import annotations

from fuzz_support import terminal_summary, tiny_checkpoints  # noqa: F401  (the fixture, registered here)


def pytest_terminal_summary(terminalreporter):
    terminal_summary(terminalreporter)
