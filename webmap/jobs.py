"""Run long analyses as jobs: an embedded worker (one background thread) that records progress in the store.

Submitting stores a queued job (``layers.jobs``) and hands its id to the app's worker, a
``ThreadPoolExecutor(max_workers=1)`` started on first use, so no extra service is needed. A job
function takes only the job (read from the store by id) and writes its stage, percentage, result or
error back to the store; the pages read the store, never the thread.

The embedded worker assumes one app process (``accessplan serve`` runs one waitress process with
threads): when it starts, jobs left unfinished by an earlier process are marked failed.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from layers import jobs
from webmap.store import get_store

if TYPE_CHECKING:
    from layers.jobs import Job

logger = logging.getLogger(__name__)

_EXTENSION = "accessplan_jobs"
INTERRUPTED = "服务重启，任务中断；请重新提交。"


def keyed_text(key: str, **values: Any) -> str:
    """Return a progress or error message to store as its key and values (JSON), to translate when shown.

    The pages turn it into the page's language (``webmap.views.planner.pages.shown_message``); the
    values are numbers or short texts (a model's name, an error's details).
    """
    return json.dumps({"key": key, "values": values}, ensure_ascii=False, sort_keys=True)


def read_keyed(text: str | None) -> tuple[str, dict[str, Any]] | None:
    """Return the key and values of a stored ``keyed_text``; None for plain text."""
    if not text or not text.startswith('{"key": '):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return str(data["key"]), dict(data.get("values") or {})


class KeyedJobError(Exception):
    """A job's failure stored as a message key and values (``keyed_text``), shown in the page's language."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(keyed_text(key, **values))


@dataclass(frozen=True)
class JobOutcome:
    """What a job function returns: the result summary (JSON) and the data versions it read."""

    result: dict[str, Any]
    data_versions: dict[str, Any] | None = None


class JobProgress:
    """Record a running job's progress in the store.

    ``stage(text)`` starts the next of ``total`` stages (the CLI's ``Progress`` interface, so shared
    code can report to either); calling the object as ``progress(text, fraction)`` reports a share
    (0–1) of the current stage (the ``progress`` callback of the siting models).
    """

    def __init__(self, job_id: str, total: int, *, report: Callable[..., None] | None = None) -> None:
        self.job_id, self.total, self.done = job_id, max(1, total), 0
        self._report = report or (lambda **kw: jobs.report_progress(get_store(), job_id, **kw))

    def expect(self, total: int) -> None:
        """Set how many stages the job has (a job function calls this first)."""
        self.total = max(1, total)

    def stage(self, text: str) -> None:
        """Start the next stage."""
        self.done = min(self.done + 1, self.total)
        self._report(stage=text, percent=100.0 * (self.done - 1) / self.total)

    def __call__(self, text: str, fraction: float) -> None:
        """Report ``fraction`` (0–1) of the current stage done."""
        within = min(1.0, max(0.0, float(fraction)))
        self._report(stage=text, percent=100.0 * (max(self.done, 1) - 1 + within) / self.total)


#: A job function: the stored job, its progress recorder and its own output folder → the outcome.
JobFunction = Callable[["Job", JobProgress, Path], JobOutcome]


@dataclass
class _Worker:
    functions: dict[str, JobFunction]
    started_at: datetime
    executor: ThreadPoolExecutor | None = None
    futures: dict[str, Future[None]] = field(default_factory=dict)
    lock: Lock = field(default_factory=Lock)


def init_app(app: Flask, functions: dict[str, JobFunction]) -> None:
    """Set the job default (``JOBS_DIR``) and the job functions by kind."""
    app.config.setdefault("JOBS_DIR", str(Path(app.instance_path) / "jobs"))
    app.extensions[_EXTENSION] = _Worker(functions=dict(functions), started_at=datetime.now(UTC))


def register_job_function(app: Flask, kind: str, function: JobFunction) -> None:
    """Add or replace the function that runs jobs of ``kind``."""
    app.extensions[_EXTENSION].functions[kind] = function


def job_function(app: Flask, kind: str) -> JobFunction:
    """Return the function that runs jobs of ``kind``."""
    return app.extensions[_EXTENSION].functions[kind]


def job_dir(job_id: str) -> Path:
    """Return the folder holding a job's files (``JOBS_DIR``/<id>)."""
    return Path(current_app.config["JOBS_DIR"]) / job_id


def submit_job(kind: str, parameters: dict[str, Any], *, user: str) -> str:
    """Store a queued job and hand it to the embedded worker; return its id.

    Raises
    ------
    KeyError
        If no job function is registered for ``kind``.
    """
    worker: _Worker = current_app.extensions[_EXTENSION]
    if kind not in worker.functions:
        msg = f"No job function for kind {kind!r}; known: {sorted(worker.functions)!r}."
        raise KeyError(msg)
    job_id = jobs.create_job(get_store(), kind, parameters=parameters, created_by=user)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with worker.lock:
        executor = _executor(app, worker)
        worker.futures[job_id] = executor.submit(_run_in_app, app, job_id)
    return job_id


def wait_for_job(app: Flask, job_id: str, *, timeout_s: float = 120.0) -> None:
    """Block until the embedded worker has run ``job_id`` (tests; the pages poll the store instead)."""
    future = app.extensions[_EXTENSION].futures.get(job_id)
    if future is not None:
        future.result(timeout=timeout_s)


def shutdown_worker(app: Flask) -> None:
    """Stop the embedded worker after the jobs it holds (tests, app shutdown)."""
    worker: _Worker = app.extensions[_EXTENSION]
    with worker.lock:
        if worker.executor is not None:
            worker.executor.shutdown(wait=True)
            worker.executor = None


def run_job(job_id: str) -> None:
    """Run one queued job in the current app context: claim it, call its function, store result or error.

    Any exception becomes the job's error message (people see it on the job's page); the traceback
    goes to the log only. Returns without running anything if the job is no longer queued.
    """
    store = get_store()
    job = jobs.claim_job(store, job_id)
    if job is None:
        logger.info("Job %s was not queued any more; skipped", job_id)
        return
    worker: _Worker = current_app.extensions[_EXTENSION]
    out_dir = job_dir(job.id)
    try:
        function = worker.functions[job.kind]
        out_dir.mkdir(parents=True, exist_ok=True)
        outcome = function(job, JobProgress(job.id, 1), out_dir)
    except Exception as exc:  # noqa: BLE001 - every failure must reach the job record
        logger.exception("Job %s (%s) failed", job.id, job.kind)
        jobs.fail_job(store, job.id, _message(exc))
        shutil.rmtree(out_dir, ignore_errors=True)
        return
    jobs.finish_job(store, job.id, result=outcome.result, data_versions=outcome.data_versions,
                    result_path=str(out_dir))  # fmt: skip


def _executor(app: Flask, worker: _Worker) -> ThreadPoolExecutor:
    if worker.executor is None:
        with app.app_context():
            _fail_jobs_of_earlier_processes(worker.started_at)
        worker.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="accessplan-job")
        logger.info("Started the embedded job worker")
    return worker.executor


def _fail_jobs_of_earlier_processes(started_at: datetime) -> None:
    store = get_store()
    for job in jobs.list_jobs(store, limit=1000):
        created = job.created_at if job.created_at.tzinfo else job.created_at.replace(tzinfo=UTC)
        if not job.finished and created < started_at:
            jobs.fail_job(store, job.id, INTERRUPTED)


def _run_in_app(app: Flask, job_id: str) -> None:
    with app.app_context():
        run_job(job_id)


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)  # click.ClickException keeps its text in .message
    return text if text else type(exc).__name__
