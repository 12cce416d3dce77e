"""The observable view state: conversations, turns, the queue and the model, kept in step with
the database and the worker. Widgets call its methods and listen to its signals; it never
touches a widget. Lives on the GUI thread.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from desktop.app_settings import AppSettings
from desktop.attachment import Attachment
from desktop.database import (
    ConversationRecord,
    Database,
    ImageRecord,
    TurnRecord,
    TurnStatus,
)
from desktop.i18n import tr
from desktop.job import ImageSpec, Job, TurnSpec
from desktop.job_queue import JobQueue, LoadModel, VerifyFolder
from desktop.model_folder import verify_model_folder
from desktop.orphans import DataFolderLock, remove_orphans
from desktop.qt_images import pil_to_qimage
from desktop.worker import (
    EngineWorker,
    FolderVerified,
    ImageSaved,
    JobStarted,
    ModelFailed,
    ModelLoaded,
    ModelLoading,
    default_engine_factory,
)
from engine.api import (
    SEED_RANGE,
    Cancelled,
    DenoiseStep,
    Engine,
    Failed,
    Finished,
    GenerationSettings,
    ImageRole,
    ImageTokenProgress,
    ModelInfo,
    Rewrite,
    Role,
    Task,
    TextDelta,
    copy_file_atomic,
    save_png_atomic,
)

log = logging.getLogger(__name__)
_CTX = "Session"
MAX_SEED = int(SEED_RANGE.high)
LAST_CONVERSATION_KEY = "last_conversation"  # the conversation open when the app closed
TITLE_LENGTH = 48  # characters of the first request kept as a conversation's title


class ModelState:
    NONE = "none"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class Session(QObject):
    conversations_changed = Signal()
    conversation_opened = Signal(int)  # id, or -1 when none is open
    turn_added = Signal(object)  # TurnRecord
    turn_changed = Signal(object)  # TurnRecord (status, text or error changed)
    text_streamed = Signal(int, str)  # turn id, delta
    rewrite_shown = Signal(int, str)  # turn id, the PSR rewrite
    progress = Signal(int, str, int, int)  # turn id, "tokens" | "denoise", done, total
    preview = Signal(int, QImage)  # turn id, the current denoising estimate
    image_added = Signal(object, QImage)  # ImageRecord, its pixels
    queue_changed = Signal()
    model_changed = Signal()
    folder_verified = Signal(str, list)  # path, problems
    notice = Signal(str)  # something to tell the person (not an error of a turn)

    def __init__(
        self,
        db: Database,
        engine_factory: Callable[[], Engine] = default_engine_factory,
        verifier: Callable[[str], list[str]] = verify_model_folder,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.db = db
        self.settings = AppSettings.load(db)
        self.queue = JobQueue()
        self.worker = EngineWorker(self.queue, engine_factory, verifier)
        self.worker.reported.connect(self._on_worker_event)
        self.conversation_id: int | None = None
        self.model_state = ModelState.NONE
        self.model_info: ModelInfo | None = None
        self.model_message = ""
        self._jobs: dict[str, Job] = {}  # queued and running, by request id
        self._streamed: dict[int, str] = {}  # turn id -> text so far
        self._running: str | None = None
        self.interrupted = db.recover_interrupted()
        # the only WeGen on this data folder: nothing else is writing files there, so the
        # leftovers of a crash can go (before the worker writes anything)
        self.folder_lock = DataFolderLock(db.data_dir)
        self.removed_files = remove_orphans(db) if self.folder_lock.acquire() else []

    # --- lifetime -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker and load the model chosen in the settings."""
        self.worker.start()
        self.load_model()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel the running reply and stop the worker; whether it stopped within
        ``timeout_ms``. Queued replies stay queued in the database and show as interrupted
        (with Retry) next time."""
        stopped = self.worker.shutdown(timeout_ms)
        if stopped:
            self.folder_lock.release()  # else the process ends soon, which releases it
        return stopped

    def load_model(self, settings: AppSettings | None = None) -> None:
        if settings is not None:
            self.settings = settings
            settings.save(self.db)
        self.queue.put_command(LoadModel(self.settings.model_dir, self.settings.runtime()))

    def verify_folder(self, path: str) -> None:
        """Check a model folder on the worker thread; the answer comes as `folder_verified`."""
        self.queue.put_command(VerifyFolder(path))

    # --- conversations --------------------------------------------------------------------
    def conversations(self, search: str = "") -> list[ConversationRecord]:
        return self.db.conversations(search)

    def new_conversation(self) -> None:
        """Start an empty conversation (created in the database when the first message is sent)."""
        self.conversation_id = None
        self.db.set_setting(LAST_CONVERSATION_KEY, None)
        self.conversation_opened.emit(-1)

    def open_conversation(self, conversation_id: int) -> None:
        if self.db.conversation(conversation_id) is None:
            return
        self.conversation_id = conversation_id
        self.db.set_setting(LAST_CONVERSATION_KEY, conversation_id)
        self.conversation_opened.emit(conversation_id)

    def resume(self) -> None:
        """Open the conversation the person was in when the app last closed (if it still exists),
        else an empty one."""
        last = self.db.setting(LAST_CONVERSATION_KEY)
        if isinstance(last, int) and self.db.conversation(last) is not None:
            self.open_conversation(last)
        else:
            self.new_conversation()

    def _new_title(self, text: str, attachments: list[Attachment], task: Task) -> str:
        """A title that tells this conversation from the others: the first request, else the
        first attachment's name (with the task), else a number; " (2)" if it is taken."""
        title = " ".join(text.split())
        if len(title) > TITLE_LENGTH:
            title = title[: TITLE_LENGTH - 1].rstrip() + "…"
        if not title and attachments:
            name = attachments[0].source or tr(_CTX, "image")
            title = name if task is Task.AUTO else f"{task.value.capitalize()}: {name}"
        taken = {c.title for c in self.db.conversations()}
        if not title:
            number = len(taken) + 1
            while tr(_CTX, "Conversation {0}").format(number) in taken:
                number += 1
            return tr(_CTX, "Conversation {0}").format(number)
        unique, n = title, 2
        while unique in taken:
            unique, n = f"{title} ({n})", n + 1
        return unique

    def turns(self) -> list[TurnRecord]:
        return self.db.turns(self.conversation_id) if self.conversation_id is not None else []

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        title = " ".join(title.split())
        if title:
            self.db.rename_conversation(conversation_id, title)
            self.conversations_changed.emit()

    def delete_conversation(self, conversation_id: int) -> None:
        """Stop its jobs, then delete its turns and image files."""
        for job in list(self._jobs.values()):
            if job.conversation_id == conversation_id:
                if self.queue.remove(job.request_id) is not None:
                    del self._jobs[job.request_id]
                else:
                    self.worker.cancel(job.request_id)
        self.db.delete_conversation(conversation_id)
        self.queue_changed.emit()
        self.conversations_changed.emit()
        if self.conversation_id == conversation_id:
            self.new_conversation()

    # --- sending --------------------------------------------------------------------------
    def send(
        self,
        text: str,
        attachments: list[Attachment],
        settings: GenerationSettings,
        task: Task = Task.AUTO,
    ) -> TurnRecord | None:
        """Store the user turn and queue the reply; returns the (queued) assistant turn."""
        text = text.strip()
        if not text and not attachments and task not in (Task.VARIATIONS, Task.EDIT):
            self.notice.emit(tr(_CTX, "Type a message or attach an image first."))
            return None
        if settings.seed is None:
            settings = GenerationSettings.from_dict(
                {**settings.to_dict(), "seed": random.randint(0, MAX_SEED)}
            )
        if self.conversation_id is None:
            title = self._new_title(text, attachments, task)
            self.conversation_id = self.db.create_conversation(title).id
            self.db.set_setting(LAST_CONVERSATION_KEY, self.conversation_id)
            self.conversations_changed.emit()
            self.conversation_opened.emit(self.conversation_id)
        conversation_id = self.conversation_id
        user = self.db.add_turn(
            conversation_id, Role.USER, text, task=task, settings=settings.to_dict()
        )
        folder = self.db.conversation_dir(conversation_id)
        for index, attachment in enumerate(attachments):
            path = self._store_attachment(attachment, folder, user.id, index)
            width, height = attachment.image.size
            self.db.add_image(
                user.id,
                path,
                width=width,
                height=height,
                role=attachment.role,
                source=attachment.source,
            )
        user = self.db.turn(user.id) or user
        self.turn_added.emit(user)
        assistant = self.db.add_turn(conversation_id, Role.ASSISTANT, status=TurnStatus.QUEUED)
        self.turn_added.emit(assistant)
        self._queue_reply(assistant, user)
        self.conversations_changed.emit()
        return self.db.turn(assistant.id)

    def retry(self, turn_id: int) -> bool:
        """Run an interrupted, cancelled or failed reply again, in its place."""
        turn = self.db.turn(turn_id)
        if turn is None or turn.role is not Role.ASSISTANT:
            return False
        if not turn.status.retryable:
            return False
        turns = self.db.turns(turn.conversation_id)
        users = [t for t in turns if t.position < turn.position and t.role is Role.USER]
        if not users:
            return False
        self.db.delete_images_of_turn(turn_id)
        self.db.update_turn(
            turn_id, text="", rewrite="", error="", status=TurnStatus.QUEUED, timings={}
        )
        turn = self.db.turn(turn_id)
        assert turn is not None
        self.turn_changed.emit(turn)
        self._queue_reply(turn, users[-1])
        return True

    def _queue_reply(self, assistant: TurnRecord, user: TurnRecord) -> None:
        turns = self.db.turns(assistant.conversation_id)
        history = _history(self.db, [t for t in turns if t.position < user.position])
        job = Job(
            conversation_id=assistant.conversation_id,
            turn_id=assistant.id,
            message=_spec(self.db, user),
            history=tuple(history),
            settings=GenerationSettings.from_dict(user.settings),
            task=user.task,
            output_dir=self.db.conversation_dir(assistant.conversation_id),
        )
        self.db.update_turn(assistant.id, request_id=job.request_id)
        self._jobs[job.request_id] = job
        self.queue.put(job)
        self.queue_changed.emit()

    @staticmethod
    def _store_attachment(attachment: Attachment, folder: Path, turn_id: int, index: int) -> Path:
        source = attachment.path
        if (
            source is not None
            and source.is_file()
            and source.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
            and max(attachment.image.size) == max(_original_size(source))
        ):
            return copy_file_atomic(source, folder / f"att{turn_id}-{index}{source.suffix.lower()}")
        return save_png_atomic(attachment.image, folder / f"att{turn_id}-{index}.png")

    # --- the queue ------------------------------------------------------------------------
    def pending_jobs(self) -> list[Job]:
        return self.queue.pending()

    def running_job(self) -> Job | None:
        return self._jobs.get(self._running) if self._running else None

    def is_busy(self) -> bool:
        return bool(self._jobs)

    def move_job(self, request_id: str, offset: int) -> None:
        if self.queue.move(request_id, offset):
            self.queue_changed.emit()

    def cancel(self, request_id: str) -> None:
        """Cancel a queued job at once, or ask the running one to stop."""
        job = self.queue.remove(request_id)
        if job is not None:
            self._end_job(request_id, TurnStatus.CANCELLED)
        else:
            self.worker.cancel(request_id)

    def cancel_running(self) -> bool:
        if self._running is None:
            return False
        self.worker.cancel(self._running)
        return True

    # --- images ---------------------------------------------------------------------------
    def image_path(self, image: ImageRecord) -> Path:
        return self.db.image_path(image)

    def before_image(self, image: ImageRecord) -> ImageRecord | None:
        """The image an edit, restoration or restyle started from, for the comparison view."""
        turn = self.db.turn(image.turn_id)
        if turn is None or turn.role is not Role.ASSISTANT:
            return None
        earlier = [t for t in self.db.turns(turn.conversation_id) if t.position < turn.position]
        users = [t for t in earlier if t.role is Role.USER]
        if not users:
            return None
        user = users[-1]
        for role in (ImageRole.RESTORE, ImageRole.IMAGE):
            for candidate in user.images:
                if candidate.role is role:
                    return candidate
        if user.task in (Task.EDIT, Task.VARIATIONS, Task.AUTO):
            for previous in reversed(earlier):
                if previous.role is Role.ASSISTANT and previous.images:
                    return previous.images[-1]
        return None

    # --- worker events --------------------------------------------------------------------
    def _on_worker_event(self, event: object) -> None:
        if isinstance(event, ModelLoading):
            self._set_model(ModelState.LOADING, None, event.step)
        elif isinstance(event, ModelLoaded):
            self._set_model(ModelState.READY, event.info, "")
        elif isinstance(event, ModelFailed):
            self._set_model(ModelState.FAILED, None, event.message)
        elif isinstance(event, FolderVerified):
            self.folder_verified.emit(event.path, event.problems)
        else:
            self._on_job_event(event)

    def _set_model(self, state: str, info: ModelInfo | None, message: str) -> None:
        self.model_state, self.model_info, self.model_message = state, info, message
        self.model_changed.emit()

    def _on_job_event(self, event: object) -> None:
        request_id = getattr(event, "request_id", None)
        job = self._jobs.get(request_id) if request_id else None
        if job is None:
            if isinstance(event, ImageSaved):  # its conversation was deleted meanwhile
                event.path.unlink(missing_ok=True)
            return
        turn_id = job.turn_id
        if self.db.turn(turn_id) is None:
            if isinstance(event, ImageSaved):
                event.path.unlink(missing_ok=True)
            if isinstance(event, Finished | Cancelled | Failed):
                self._jobs.pop(job.request_id, None)
                self._running = None
                self.queue_changed.emit()
            return
        if isinstance(event, JobStarted):
            self._running = job.request_id
            self._streamed[turn_id] = ""
            self.db.update_turn(turn_id, status=TurnStatus.RUNNING)
            self._emit_turn(turn_id)
            self.queue_changed.emit()
        elif isinstance(event, TextDelta):
            self._streamed[turn_id] = self._streamed.get(turn_id, "") + event.text
            self.text_streamed.emit(turn_id, event.text)
        elif isinstance(event, Rewrite):
            self.db.update_turn(turn_id, rewrite=event.text)
            self.rewrite_shown.emit(turn_id, event.text)
        elif isinstance(event, ImageTokenProgress):
            self.progress.emit(turn_id, "tokens", event.done, event.total)
        elif isinstance(event, DenoiseStep):
            self.progress.emit(turn_id, "denoise", event.step, event.total)
            if event.preview is not None:
                self.preview.emit(turn_id, pil_to_qimage(event.preview))
        elif isinstance(event, ImageSaved):
            width, height = event.image.size
            record = self.db.add_image(
                turn_id, event.path, width=width, height=height, metadata=event.metadata
            )
            self.db.update_turn(turn_id, text=self._streamed.get(turn_id, ""))
            self.image_added.emit(record, event.qimage)
        elif isinstance(event, Finished):
            text = event.reply.text or self._streamed.get(turn_id, "")
            self.db.update_turn(
                turn_id, text=text, status=TurnStatus.DONE, timings=event.timings.to_dict()
            )
            self._end_job(job.request_id, None)
        elif isinstance(event, Cancelled):
            self.db.update_turn(turn_id, text=self._streamed.get(turn_id, ""))
            self._end_job(job.request_id, TurnStatus.CANCELLED)
        elif isinstance(event, Failed):
            self.db.update_turn(turn_id, text=self._streamed.get(turn_id, ""), error=event.message)
            self._end_job(job.request_id, TurnStatus.FAILED)

    def _end_job(self, request_id: str, status: str | None) -> None:
        job = self._jobs.pop(request_id, None)
        if self._running == request_id:
            self._running = None
        if job is not None:
            if status is not None:
                self.db.update_turn(job.turn_id, status=status)
            self._streamed.pop(job.turn_id, None)
            self.db.touch_conversation(job.conversation_id)
            self._emit_turn(job.turn_id)
        self.queue_changed.emit()

    def _emit_turn(self, turn_id: int) -> None:
        turn = self.db.turn(turn_id)
        if turn is not None:
            self.turn_changed.emit(turn)


def _spec(db: Database, turn: TurnRecord) -> TurnSpec:
    return TurnSpec(
        turn.role,
        turn.text,
        tuple(
            ImageSpec(db.image_path(i), i.role, i.source or Path(i.path).name) for i in turn.images
        ),
        turn.task if turn.role is Role.USER else Task.AUTO,
    )


def _history(db: Database, turns: list[TurnRecord]) -> list[TurnSpec]:
    """Completed user/assistant pairs, in order (failed or unfinished replies are left out)."""
    history: list[TurnSpec] = []
    for user, reply in itertools.pairwise(turns):
        if user.role is not Role.USER or reply.role is not Role.ASSISTANT:
            continue
        if reply.status is not TurnStatus.DONE or not (reply.text or reply.images):
            continue
        history += [_spec(db, user), _spec(db, reply)]
    return history


def _original_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except OSError:
        return (0, 0)
