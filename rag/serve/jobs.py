"""Background ingest jobs for ``POST /ingest``: one at a time per server, progress you can poll.

A job runs :meth:`rag.index.Index.ingest` on a worker thread under the index's writer lock (a
``rag ingest`` in another process makes the job fail with the lock's message, not wait
forever). Its record counts files as they are read, so ``GET /jobs/{id}`` shows how far it is.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class IngestJob:
    """One ingest: what it reads, how far it got, and how it ended."""

    id: str
    path: str
    state: str = "queued"  # queued, running, done, failed
    files_total: int | None = None
    files_done: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    report: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        end = self.finished or time.time()
        row["seconds"] = round(end - self.started, 3)
        row["status_url"] = f"/jobs/{self.id}"
        return row


class JobConflict(RuntimeError):
    """Another ingest job of this server is still running."""


class IngestJobs:
    """The server's ingest jobs by id (kept for the server's lifetime)."""

    def __init__(self, index: Any, on_change: Callable[[], None]) -> None:
        self._index = index  # a rag.index.Index
        self._on_change = on_change
        self._jobs: dict[str, IngestJob] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> IngestJob | None:
        return self._jobs.get(job_id)

    def all(self) -> list[IngestJob]:
        return list(self._jobs.values())

    def start(self, path: str, *, prune: bool = False) -> IngestJob:
        """Start ingesting ``path`` (a file or folder on the server's machine) in the background."""
        target = Path(path).expanduser()
        if "://" in path:
            raise ValueError(f"URLs are not read: download {path} and pass its path")
        if not target.exists():
            raise FileNotFoundError(f"{path} does not exist on the server")
        with self._lock:
            if any(j.state in ("queued", "running") for j in self._jobs.values()):
                raise JobConflict("an ingest job is already running; poll GET /jobs")
            job = IngestJob(id=uuid.uuid4().hex[:12], path=str(target.resolve()))
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, target, prune), daemon=True).start()
        return job

    def _run(self, job: IngestJob, target: Path, prune: bool) -> None:
        job.state = "running"
        try:
            report = self._ingest(job, target, prune)
            job.report = {
                "summary": report.summary(),
                "ingested": len(report.ingested),
                "unchanged": len(report.unchanged),
                "removed": len(report.removed),
                "chunks_added": report.chunks_added,
                "failed": [{"path": e.path, "reason": e.reason} for e in report.failed],
            }
            job.state = "done"
        except Exception as exc:  # the job's record is how the client learns of any failure
            job.error = f"{type(exc).__name__}: {exc}"
            job.state = "failed"
        finally:
            job.finished = time.time()
            self._on_change()

    def _ingest(self, job: IngestJob, target: Path, prune: bool) -> Any:
        from connectors.directory import load_directory, load_file
        from connectors.walk import walk

        index = self._index
        if target.is_dir():
            job.files_total = sum(1 for e in walk(target) if not e.folder)
            documents = load_directory(target, known_hashes=index.known_hashes())
        else:
            job.files_total = 1
            documents = iter([load_file(target)])

        def advance(_source: str) -> None:
            job.files_done += 1

        return index.ingest(
            documents,
            prune_missing_under=str(target.resolve()) if prune and target.is_dir() else None,
            progress=advance,
        )
