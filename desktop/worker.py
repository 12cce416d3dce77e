"""The one long-lived worker thread that owns the engine.

The GUI thread puts commands and jobs on a `JobQueue`; the worker takes them one at a time,
calls the engine and reports everything through one Qt signal, `EngineWorker.reported`, which Qt
delivers on the GUI thread (a queued connection) in order. Besides the engine's own events it
reports the desktop events defined here. Finished images are written to disk here, on the
worker thread, before `ImageSaved` is reported.

The engine is created by ``engine_factory`` on the worker thread at the first `LoadModel`, so
torch is imported there, after the window is on screen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL.Image import Image
from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from desktop.i18n import tr
from desktop.job import Job
from desktop.job_queue import JobQueue, LoadModel, Stop, VerifyFolder
from desktop.model_folder import verify_model_folder
from desktop.qt_images import pil_to_qimage
from engine.api import (
    Cancelled,
    CancelledError,
    Engine,
    Event,
    Failed,
    Finished,
    ImageDone,
    ModelInfo,
    WeGenError,
    create_engine,
    save_png_atomic,
)

log = logging.getLogger(__name__)
_CTX = "Worker"


@dataclass(frozen=True)
class ModelLoading:
    model_dir: str
    step: str = ""  # what a long load is doing now (the one-time ONNX export), for the window


@dataclass(frozen=True)
class ModelLoaded:
    info: ModelInfo


@dataclass(frozen=True)
class ModelFailed:
    model_dir: str
    message: str


@dataclass(frozen=True)
class FolderVerified:
    path: str
    problems: list[str]


@dataclass(frozen=True)
class JobStarted:
    request_id: str


@dataclass(frozen=True, eq=False)
class ImageSaved:
    """An `ImageDone`, after the worker wrote it to ``path`` with its metadata."""

    request_id: str
    index: int
    image: Image
    path: Path
    qimage: QImage  # the same pixels, made here: a QImage (unlike a QPixmap) may be
    # made off the GUI thread, which is spared the copy (a few ms at 1024 px)
    metadata: dict[str, Any] = field(default_factory=dict)


WorkerEvent = ModelLoading | ModelLoaded | ModelFailed | FolderVerified | JobStarted | ImageSaved


def default_engine_factory() -> Engine:
    """The real engine (`engine.api.create_engine` imports it when called, on the worker
    thread)."""
    return create_engine()


class EngineWorker(QThread):
    #: every engine event (except ImageDone, reported as ImageSaved) and every WorkerEvent
    reported = Signal(object)

    def __init__(
        self,
        queue: JobQueue,
        engine_factory: Callable[[], Engine] = default_engine_factory,
        verifier: Callable[[str], list[str]] = verify_model_folder,
    ) -> None:
        super().__init__()
        self._verify = verifier
        self.setObjectName("wegen-engine-worker")
        self.queue = queue
        self._engine_factory = engine_factory
        self._engine: Engine | None = None
        self._loaded: ModelInfo | None = None
        self._lock = threading.Lock()
        self._current: tuple[Job, threading.Event] | None = None

    # --- called from the GUI thread -------------------------------------------------------
    def cancel(self, request_id: str) -> bool:
        """Ask the running job to stop; False if ``request_id`` is not the running job."""
        with self._lock:
            if self._current and self._current[0].request_id == request_id:
                self._current[1].set()
                return True
        return False

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel the running job, stop the thread and wait for it up to ``timeout_ms``; whether
        it stopped (a model load cannot be cancelled: it ends when the load does)."""
        with self._lock:
            if self._current:
                self._current[1].set()
        self.queue.put_command(Stop())
        if self.isRunning() and not self.wait(timeout_ms):
            log.warning("the engine did not stop within %d ms", timeout_ms)
            return False
        return True

    # --- the worker thread ----------------------------------------------------------------
    def run(self) -> None:
        while True:
            item = self.queue.take()
            if item is None:
                continue
            if isinstance(item, Stop):
                return
            if isinstance(item, LoadModel):
                self._load(item)
            elif isinstance(item, VerifyFolder):
                self.reported.emit(FolderVerified(item.path, self._verify(item.path)))
            else:
                self._run_job(item)

    def _load(self, command: LoadModel) -> None:
        self.reported.emit(ModelLoading(command.model_dir))
        problems = self._verify(command.model_dir)
        if problems:
            self.reported.emit(ModelFailed(command.model_dir, "\n".join(problems)))
            return
        try:
            if self._engine is None:
                self._engine = self._engine_factory()
            self._loaded = None
            info = self._engine.load(
                command.model_dir,
                command.runtime,
                lambda done, total, what: self.reported.emit(
                    ModelLoading(
                        command.model_dir,
                        tr(_CTX, "{0} ({1} of {2})").format(what, done + 1, total),
                    )
                ),
            )
        except ImportError as error:
            log.exception("engine import failed")
            message = tr(
                _CTX, "The WeGen engine could not be started ({0}). Reinstall WeGen."
            ).format(error)
            self.reported.emit(ModelFailed(command.model_dir, message))
        except WeGenError as error:
            self.reported.emit(ModelFailed(command.model_dir, str(error)))
        except Exception as error:
            log.exception("loading %s failed", command.model_dir)
            message = tr(_CTX, "Loading the model failed: {0}: {1}").format(
                type(error).__name__, error
            )
            self.reported.emit(ModelFailed(command.model_dir, message))
        else:
            self._loaded = info
            self.reported.emit(ModelLoaded(info))

    def _run_job(self, job: Job) -> None:
        cancel = threading.Event()
        with self._lock:
            self._current = (job, cancel)
        self.reported.emit(JobStarted(job.request_id))
        done = False

        def finish(event: Event) -> None:
            nonlocal done
            if not done:
                done = True
                self.reported.emit(event)

        def on_event(event: Event) -> None:
            if done:
                return
            if isinstance(event, ImageDone):
                path = job.output_path(event.index)
                save_png_atomic(event.image, path, job.record(event.metadata))
                self.reported.emit(
                    ImageSaved(
                        job.request_id,
                        event.index,
                        event.image,
                        path,
                        pil_to_qimage(event.image),
                        event.metadata,
                    )
                )
            elif isinstance(event, Finished | Cancelled | Failed):
                finish(event)
            else:
                self.reported.emit(event)

        try:
            if self._engine is None or self._loaded is None:
                finish(
                    Failed(
                        job.request_id,
                        tr(_CTX, "No model is loaded. Open Settings to choose a model folder."),
                    )
                )
            elif cancel.is_set():
                finish(Cancelled(job.request_id))
            else:
                self._engine.run(job.build_request(), on_event, cancel)
        except CancelledError:
            finish(Cancelled(job.request_id))
        except WeGenError as error:
            finish(Failed(job.request_id, str(error)))
        except OSError as error:
            log.exception("job %s", job.request_id)
            finish(
                Failed(
                    job.request_id,
                    tr(
                        _CTX, "Could not write the image ({0}). Check the free space in {1}."
                    ).format(error, job.output_dir),
                )
            )
        except Exception as error:
            log.exception("job %s failed", job.request_id)
            finish(
                Failed(
                    job.request_id,
                    tr(_CTX, "The engine failed: {0}: {1}").format(type(error).__name__, error),
                )
            )
        finally:
            if not done:
                if cancel.is_set():
                    finish(Cancelled(job.request_id))
                else:
                    finish(
                        Failed(
                            job.request_id,
                            tr(_CTX, "The engine stopped without finishing the reply."),
                        )
                    )
            with self._lock:
                self._current = None
