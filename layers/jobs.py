"""Keep long analyses as job records in the store: parameters, data versions, progress, error and result.

A job goes ``queued → running → done | failed``. Whoever runs it (the app's embedded worker or a
separate worker process) needs only the job id: everything else is read from here. The table is
created by the Alembic revision ``0003`` when a ``layers.store.Store`` opens the database.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from layers.errors import NotFoundError
from layers.store import metadata

if TYPE_CHECKING:
    from layers.store import Store

logger = logging.getLogger(__name__)

#: Job statuses, in the order a job passes through them.
JOB_STATUSES = ("queued", "running", "done", "failed")
#: Statuses after which a job no longer changes.
FINISHED_STATUSES = frozenset({"done", "failed"})

jobs_table = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("data_versions", sa.JSON),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("stage", sa.Text),
    sa.Column("percent", sa.Float, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("result", sa.JSON),
    sa.Column("result_path", sa.Text),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Index("ix_jobs_status_created", "status", "created_at"),
    sa.Index("ix_jobs_kind_created", "kind", "created_at"),
)


@dataclass(frozen=True)
class Job:
    """One stored job.

    Attributes
    ----------
    id
        32 hex characters (a UUID4), safe in URLs and folder names.
    kind
        What runs: ``coverage``, ``gaps``, ``service_areas``, ``siting`` …
    parameters
        The options the job was submitted with (JSON).
    data_versions
        The versions of the data the run read (road file hash, layer row counts and last change), set
        when the job finishes; None before.
    status
        ``queued``, ``running``, ``done`` or ``failed``.
    stage, percent
        The stage being run (text for people) and the share done, 0–100.
    error
        Why a failed job failed (None otherwise).
    result
        The result summary (JSON) of a done job.
    result_path
        Folder holding the result's files (downloads), when the job wrote any.
    """

    id: str
    kind: str
    parameters: dict[str, Any]
    data_versions: dict[str, Any] | None
    status: str
    stage: str | None
    percent: float
    error: str | None
    result: dict[str, Any] | None
    result_path: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        """True once the job is done or failed."""
        return self.status in FINISHED_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """Return the job's state for a progress poll (no result body): JSON-safe, stable keys."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "stage": self.stage,
            "percent": self.percent,
            "error": self.error,
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


def create_job(store: Store, kind: str, *, parameters: dict[str, Any], created_by: str) -> str:
    """Store a new queued job and return its id.

    Parameters
    ----------
    store
        The store holding the ``jobs`` table.
    kind
        What the job runs (the worker looks its function up by this name).
    parameters
        The job's options; must be JSON-serialisable (they are stored as JSON).
    created_by
        Name of the account that submitted it.

    Raises
    ------
    ValueError
        If ``kind`` or ``created_by`` is empty.
    """
    if not kind or not created_by:
        msg = f"`kind` and `created_by` must not be empty; got {kind!r} and {created_by!r}."
        raise ValueError(msg)
    job_id = uuid.uuid4().hex
    row = {
        "id": job_id, "kind": kind, "parameters": parameters, "status": "queued", "stage": None, "percent": 0.0,
        "created_by": created_by, "created_at": datetime.now(UTC),
    }  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(jobs_table.insert(), [row])
    logger.info("Queued %s job %s for %s", kind, job_id, created_by)
    return job_id


def get_job(store: Store, job_id: str) -> Job:
    """Return one job.

    Raises
    ------
    NotFoundError
        If no job has id ``job_id``.
    """
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).mappings().one_or_none()
    if row is None:
        msg = f"No job with id {job_id!r}."
        raise NotFoundError(msg)
    return _job(row)


def list_jobs(store: Store, *, kind: str | None = None, limit: int = 50) -> list[Job]:
    """Return the newest jobs first (of one ``kind`` when given), at most ``limit``."""
    query = sa.select(jobs_table).order_by(jobs_table.c.created_at.desc()).limit(limit)
    if kind is not None:
        query = query.where(jobs_table.c.kind == kind)
    with store.engine.connect() as conn:
        return [_job(r) for r in conn.execute(query).mappings().all()]


def claim_job(store: Store, job_id: str) -> Job | None:
    """Mark the queued job ``job_id`` running and return it; None when it is not queued any more.

    The change is a conditional update, so two workers never run one job.
    """
    with store.engine.begin() as conn:
        claimed = conn.execute(
            jobs_table.update()
            .where(jobs_table.c.id == job_id, jobs_table.c.status == "queued")
            .values(status="running", started_at=datetime.now(UTC), stage="开始", percent=0.0)
        ).rowcount
    return get_job(store, job_id) if claimed == 1 else None


def report_progress(store: Store, job_id: str, *, stage: str, percent: float) -> None:
    """Record the stage a running job has reached and its share done (clipped to 0–100).

    Raises
    ------
    ValueError
        If ``percent`` is not a finite number.
    """
    if not math.isfinite(percent):
        msg = f"`percent` must be a finite number from 0 to 100; got {percent!r}."
        raise ValueError(msg)
    _update(store, job_id, {"stage": stage, "percent": min(100.0, max(0.0, float(percent)))}, only="running")


def finish_job(
    store: Store,
    job_id: str,
    *,
    result: dict[str, Any],
    data_versions: dict[str, Any] | None = None,
    result_path: str | None = None,
) -> None:
    """Mark a running job done with its result summary, the data versions it read and its files' folder."""
    values = {"status": "done", "stage": "完成", "percent": 100.0, "result": result,
              "data_versions": data_versions, "result_path": result_path, "finished_at": datetime.now(UTC)}  # fmt: skip
    _update(store, job_id, values, only="running")
    logger.info("Job %s done", job_id)


def fail_job(store: Store, job_id: str, error: str) -> None:
    """Mark a queued or running job failed, keeping ``error`` (a message for people, no traceback)."""
    _update(store, job_id, {"status": "failed", "error": error, "finished_at": datetime.now(UTC)}, only=None)
    logger.info("Job %s failed: %s", job_id, error)


def _update(store: Store, job_id: str, values: dict[str, Any], *, only: str | None) -> None:
    """Change one job; ``only`` is the status it must have (any unfinished status when None)."""
    statement = jobs_table.update().where(jobs_table.c.id == job_id)
    if only is None:
        statement = statement.where(jobs_table.c.status.in_(("queued", "running")))
    else:
        statement = statement.where(jobs_table.c.status == only)
    with store.engine.begin() as conn:
        changed = conn.execute(statement.values(values)).rowcount
    if changed != 1:
        job = get_job(store, job_id)  # raises NotFoundError for an unknown id
        msg = f"Job {job_id!r} is {job.status!r}; it must be {only or 'queued or running'!r} for this change."
        raise ValueError(msg)


def _job(row: Any) -> Job:
    return Job(**{c.name: row[c.name] for c in jobs_table.c})


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite returns naive datetimes; they were stored in UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat()
