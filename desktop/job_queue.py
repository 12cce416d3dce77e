"""The queue between the GUI thread and the worker thread. No Qt; thread-safe.

Commands (load a model, verify a folder, stop) go before jobs. Jobs wait in order and can be
moved or removed until the worker takes one; `take` blocks until there is something to do.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from desktop.job import Job
from engine.api import RuntimeRequest


@dataclass(frozen=True)
class LoadModel:
    model_dir: str
    runtime: RuntimeRequest


@dataclass(frozen=True)
class VerifyFolder:
    path: str


@dataclass(frozen=True)
class Stop:
    pass


Command = LoadModel | VerifyFolder | Stop


class JobQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._commands: deque[Command] = deque()
        self._jobs: list[Job] = []
        self._closed = False

    def put(self, job: Job) -> None:
        with self._cond:
            self._jobs.append(job)
            self._cond.notify()

    def put_command(self, command: Command) -> None:
        with self._cond:
            if isinstance(command, Stop):
                self._closed = True
            self._commands.append(command)
            self._cond.notify()

    def take(self, timeout: float | None = None) -> Command | Job | None:
        """The next command, else the next job; ``None`` after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._commands or self._jobs, timeout):
                return None
            if self._commands:
                return self._commands.popleft()
            if self._closed:
                return Stop()
            return self._jobs.pop(0)

    def pending(self) -> list[Job]:
        with self._cond:
            return list(self._jobs)

    def remove(self, request_id: str) -> Job | None:
        """Take a waiting job out of the queue; ``None`` if it is not waiting (any more)."""
        with self._cond:
            for i, job in enumerate(self._jobs):
                if job.request_id == request_id:
                    return self._jobs.pop(i)
        return None

    def move(self, request_id: str, offset: int) -> bool:
        """Move a waiting job ``offset`` places (negative: sooner). False if it is not waiting."""
        with self._cond:
            for i, job in enumerate(self._jobs):
                if job.request_id == request_id:
                    target = max(0, min(len(self._jobs) - 1, i + offset))
                    self._jobs.insert(target, self._jobs.pop(i))
                    return target != i
        return False

    def __len__(self) -> int:
        with self._cond:
            return len(self._jobs)
