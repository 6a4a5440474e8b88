from __future__ import annotations

import pytest

from layers import jobs
from layers.errors import NotFoundError
from layers.store import Store


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    yield store
    store.close()


def test_a_new_job_is_queued_with_its_parameters(store):
    job_id = jobs.create_job(store, "coverage", parameters={"threshold": "800m", "towns": ["a"]}, created_by="p")
    job = jobs.get_job(store, job_id)
    assert (job.kind, job.status, job.percent, job.stage, job.error) == ("coverage", "queued", 0.0, None, None)
    assert job.parameters == {"threshold": "800m", "towns": ["a"]}
    assert job.created_by == "p" and not job.finished
    assert len(job_id) == 32 and int(job_id, 16) >= 0


def test_progress_then_done_stores_result_and_data_versions(store):
    job_id = jobs.create_job(store, "coverage", parameters={}, created_by="p")
    assert jobs.claim_job(store, job_id).status == "running"
    jobs.report_progress(store, job_id, stage="道路网络", percent=25)
    job = jobs.get_job(store, job_id)
    assert (job.stage, job.percent) == ("道路网络", 25.0)
    jobs.report_progress(store, job_id, stage="超出", percent=140)
    assert jobs.get_job(store, job_id).percent == 100.0
    jobs.finish_job(store, job_id, result={"covered": 3}, data_versions={"roads_sha256": "ab"}, result_path="/x")
    job = jobs.get_job(store, job_id)
    assert (job.status, job.percent, job.result, job.data_versions) == ("done", 100.0, {"covered": 3},
                                                                         {"roads_sha256": "ab"})  # fmt: skip
    assert job.result_path == "/x" and job.finished_at is not None and job.finished
    assert job.to_dict()["finished_at"].endswith("+00:00")


def test_a_failed_job_keeps_its_error_and_cannot_be_finished(store):
    job_id = jobs.create_job(store, "gaps", parameters={}, created_by="p")
    jobs.claim_job(store, job_id)
    jobs.fail_job(store, job_id, "`threshold` must look like 800m; got 'abc'.")
    job = jobs.get_job(store, job_id)
    assert (job.status, job.error) == ("failed", "`threshold` must look like 800m; got 'abc'.")
    with pytest.raises(ValueError, match="is 'failed'; it must be 'running'"):
        jobs.finish_job(store, job_id, result={})
    with pytest.raises(ValueError, match="is 'failed'"):
        jobs.report_progress(store, job_id, stage="x", percent=1)


def test_a_job_is_claimed_once(store):
    first = jobs.create_job(store, "a", parameters={}, created_by="p")
    second = jobs.create_job(store, "b", parameters={}, created_by="p")
    assert jobs.claim_job(store, first).id == first
    assert jobs.claim_job(store, first) is None  # already running: nobody runs it twice
    assert jobs.get_job(store, second).status == "queued"


def test_jobs_reopen_from_a_new_store_on_the_same_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    store = Store(url)
    job_id = jobs.create_job(store, "coverage", parameters={"p": 1}, created_by="p")
    jobs.claim_job(store, job_id)
    jobs.finish_job(store, job_id, result={"by_town": [{"town_code": "500120001", "share": 0.5}]})
    store.close()
    reopened = Store(url)
    try:
        job = jobs.get_job(reopened, job_id)
        assert job.result == {"by_town": [{"town_code": "500120001", "share": 0.5}]}
        assert [j.id for j in jobs.list_jobs(reopened, kind="coverage")] == [job_id]
        assert jobs.list_jobs(reopened, kind="gaps") == []
    finally:
        reopened.close()


def test_unknown_job_and_bad_input_are_refused(store):
    with pytest.raises(NotFoundError, match="No job with id 'nope'"):
        jobs.get_job(store, "nope")
    with pytest.raises(NotFoundError):
        jobs.fail_job(store, "nope", "x")
    with pytest.raises(ValueError, match="`kind` and `created_by` must not be empty"):
        jobs.create_job(store, "", parameters={}, created_by="p")
    job_id = jobs.create_job(store, "a", parameters={}, created_by="p")
    jobs.claim_job(store, job_id)
    with pytest.raises(ValueError, match="finite"):
        jobs.report_progress(store, job_id, stage="x", percent=float("nan"))
