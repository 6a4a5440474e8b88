"""Compare-page keys named in the page's language (``field_label``)."""

from __future__ import annotations

import pytest

from webmap.fieldnames import field_label


@pytest.mark.parametrize(
    ("key", "zh", "en"),
    [
        ("thresholds", "阈值", "Threshold"),
        ("hex_size", "六边形大小（米）", "Hexagon size (metres)"),
        ("scenario.statuses", "方案 · 状态", "scenario · Status"),
        ("walk_300m_weighted_share", "加权覆盖比例（walk_300m）", "weighted share covered (walk_300m)"),
        ("gap_too_far", "离道路太远的需求点", "demand points too far from a road"),
        ("roads_sha256", "道路文件校验码", "Road file checksum"),
        ("demand.max_updated_at", "需求 · 最后修改（北京时间）", "demand · Last changed (Beijing time)"),
        ("roads_version", "roads_version", "roads_version"),  # unknown keys stay as they are
    ],
)
def test_field_label_in_both_languages(app, key, zh, en):
    with app.test_request_context("/"):
        assert field_label(key) == zh
    with app.test_request_context("/?lang=en"):
        assert field_label(key) == en
