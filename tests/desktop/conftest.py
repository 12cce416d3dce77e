"""Fixtures for the desktop tests: offscreen Qt, a data folder in tmp_path, the fake engine."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pytestqt.qtbot import QtBot

from desktop.app_settings import AppSettings
from desktop.database import Database
from desktop.fake_engine import FakeEngine
from desktop.model_folder import verify_model_folder
from desktop.paths import DATA_DIR_ENV
from desktop.session import ModelState, Session
from desktop.stall_meter import StallMeter
from desktop.window import MainWindow

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout the tests run in

ARTIFACTS = REPO_ROOT / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Qt warnings fail desktop tests (as qutebrowser does), except the offscreen plugin's."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(r"This plugin does not support"))


def quick_verify(path: str) -> list[str]:
    """The file checks that need no torch (the fake engine reads no weights)."""
    return verify_model_folder(path, use_engine=False)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(path))
    path.mkdir()
    return path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A folder that passes the basic checks (the fake engine does not read it)."""
    path = tmp_path / "model"
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "tokenizer.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"")
    return path


@pytest.fixture
def db(data_dir: Path) -> Iterator[Database]:
    database = Database(data_dir)
    yield database
    database.close()


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def engine_gate(fake_engine: FakeEngine) -> Iterator[threading.Event]:
    """Hold every request of the fake engine until the returned event is set (queue tests)."""
    gate = threading.Event()
    original = fake_engine.run

    def gated(request, on_event, cancel):  # type: ignore[no-untyped-def]
        gate.wait(5)
        original(request, on_event, cancel)

    fake_engine.run = gated  # type: ignore[method-assign]
    yield gate
    gate.set()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def session(
    db: Database, model_dir: Path, fake_engine: FakeEngine, qtbot: QtBot
) -> Iterator[Session]:
    """A started session on the fake engine with its model loaded."""
    AppSettings(model_dir=str(model_dir)).save(db)
    session = Session(db, engine_factory=lambda: fake_engine, verifier=quick_verify)
    session.start()
    qtbot.waitUntil(lambda: session.model_state == ModelState.READY, timeout=5000)
    yield session
    session.shutdown()


@pytest.fixture
def wait_idle(qtbot: QtBot) -> Callable[[Session], None]:
    """Wait until every queued and running job of a session has finished."""

    def wait(session: Session, timeout: int = 10_000) -> None:
        qtbot.waitUntil(lambda: not session.is_busy(), timeout=timeout)

    return wait


@pytest.fixture
def window(session: Session, qtbot: QtBot) -> Iterator[MainWindow]:
    win = MainWindow(session)
    qtbot.addWidget(win)
    win.resize(1360, 860)
    win.show()
    qtbot.waitExposed(win)
    yield win
    session.shutdown()


@pytest.fixture
def stall_meter() -> Iterator[StallMeter]:
    meter = StallMeter()
    yield meter
    meter.stop()
