"""Detectors for the hostile-input tests: connection attempts and imports.

Test modules import the fixtures (``from hostile_guards import connection_attempts``); conftest.py
belongs to the fuzzing tests.

Audit hooks (PEP 578) see every ``socket.connect``/``socket.getaddrinfo`` and every ``import``,
including those made from C or by third-party code, and cannot be removed once installed; so one
hook is installed once and records only while a test has switched recording on.
"""

from __future__ import annotations

import pathlib
import socket
import sys

import pytest

_NETWORK_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request")
_CODE_EVENTS = ("pickle.find_class", "marshal.loads")
_recorders: list[tuple[str, list]] = []  # (kind, events) of the tests recording now
_hook_installed = False


def _audit(event: str, args: tuple) -> None:
    for kind, events in _recorders:
        if kind == "network" and event in _NETWORK_EVENTS:
            events.append((event, args))
        elif kind == "import" and event == "import":
            events.append(args[0])
        elif kind == "code" and event in _CODE_EVENTS:
            events.append((event, args))


def _record(kind: str):
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    events: list = []
    _recorders.append((kind, events))
    return events


def _stop(events: list) -> None:
    _recorders[:] = [r for r in _recorders if r[1] is not events]


@pytest.fixture
def connection_attempts(monkeypatch):
    """Every connection attempted while the test runs; each one also fails, so none gets through.

    Offline mode is switched on as well, so a correct library never gets as far as a socket.
    """
    events = _record("network")

    def refuse(*args, **kwargs):
        raise OSError(f"the hostile-input tests forbid network access; attempted: {args!r}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    try:
        yield events
    finally:
        _stop(events)


@pytest.fixture
def code_events():
    """``pickle.find_class`` and ``marshal.loads`` audit events (event, args) raised while the test runs.

    Imports unmarshal their own bytecode too, so tests look for events that carry the attack's payload.
    """
    events = _record("code")
    try:
        yield events
    finally:
        _stop(events)


@pytest.fixture
def imports_seen():
    """The names of the modules imported while the test runs."""
    events = _record("import")
    try:
        yield events
    finally:
        _stop(events)



# --- the canary: a pickle that leaves a mark if unpickling runs code ----------------------------


class TouchOnUnpickle:
    """Unpickling this calls ``Path.touch(sentinel)``: the file appears only if code ran."""

    def __init__(self, sentinel: pathlib.Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (pathlib.Path.touch, (self.sentinel,))


@pytest.fixture
def sentinel(tmp_path):
    path = tmp_path / "sentinel_written_by_attack"
    yield path
    assert not path.exists(), f"the hostile file ran code: {path} was created"
