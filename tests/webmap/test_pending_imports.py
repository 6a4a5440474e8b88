"""Files waiting between a dry run and its confirmation: handed out once, to their uploader, unchanged, in time."""

from __future__ import annotations

import io
import json
import os
import time

import pytest

from webmap.pending_imports import PendingImports


def _pending(tmp_path, max_age_s=60.0):
    return PendingImports(tmp_path / "waiting", max_age_s)


def test_a_file_is_handed_out_once_to_its_uploader_with_its_options(tmp_path):
    pending = _pending(tmp_path)
    token = pending.save(io.BytesIO(b"id,name\n"), ".csv", user="cw-a", options={"datum": "wgs84"})
    assert len(token) == 32 and {p.name for p in (tmp_path / "waiting").iterdir()} == {f"{token}.csv", f"{token}.json"}
    assert pending.take(token, user="cw-b") is None  # another user's token: refused and the file removed
    assert pending.take(token, user="cw-a") is None
    token = pending.save(io.BytesIO(b"id,name\n"), ".csv", user="cw-a", options={"datum": "wgs84"})
    taken = pending.take(token, user="cw-a")
    assert taken is not None and taken.options == {"datum": "wgs84"} and taken.path.read_bytes() == b"id,name\n"
    assert pending.take(token, user="cw-a") is None  # a second confirmation
    pending.discard(token)
    assert list((tmp_path / "waiting").iterdir()) == []


def test_a_file_changed_since_its_dry_run_or_expired_is_refused(tmp_path):
    pending = _pending(tmp_path)
    token = pending.save(io.BytesIO(b"id\nH1\n"), ".csv", user="cw-a", options={})
    path = pending.path(token, user="cw-a")
    path.write_bytes(b"id\nH2\n")  # not the file that was checked
    assert pending.take(token, user="cw-a") is None and not path.exists()
    token = pending.save(io.BytesIO(b"id\nH1\n"), ".csv", user="cw-a", options={})
    meta = tmp_path / "waiting" / f"{token}.json"
    data = json.loads(meta.read_text(encoding="utf-8"))
    meta.write_text(json.dumps({**data, "saved_at": time.time() - 61}), encoding="utf-8")
    assert pending.path(token, user="cw-a") is None and pending.take(token, user="cw-a") is None
    old = pending.save(io.BytesIO(b"x"), ".csv", user="cw-a", options={})
    stale = time.time() - 120
    for p in (tmp_path / "waiting").glob(f"{old}.*"):
        os.utime(p, (stale, stale))
    pending.save(io.BytesIO(b"y"), ".csv", user="cw-a", options={})  # a new upload removes expired files
    assert not list((tmp_path / "waiting").glob(f"{old}.*"))


def test_tokens_and_suffixes_that_could_leave_the_folder_are_refused(tmp_path):
    pending = _pending(tmp_path)
    assert pending.take("../../etc/passwd", user="cw-a") is None
    assert pending.path("x" * 32 + "/..", user="cw-a") is None
    with pytest.raises(ValueError, match=r"`suffix` must be like '.xlsx'; got '/../a.csv'"):
        pending.save(io.BytesIO(b"x"), "/../a.csv", user="cw-a", options={})
