"""Names people read for the parameter and result keys the planner pages compare (``field_label`` filter).

The compare page lists a job's parameters, data versions and headline numbers by their keys
(``thresholds``, ``scenario.statuses``, ``covered_walk_300m_weighted_share``); this names each part in
the page's language and leaves unknown parts (data, layer ids) as they are.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from flask_babel import gettext

from webmap.i18n import N_

if TYPE_CHECKING:
    from flask import Flask

#: Key → msgid of its name.
FIELD_LABELS = MappingProxyType(
    {
        "added": N_("新增"),
        "areas": N_("服务范围"),
        "assignment": N_("分配"),
        "buffer_m": N_("缓冲距离（米）"),
        "candidate_radius": N_("候选点离驻地的最大距离"),
        "candidates_per_town": N_("每个镇街的候选点数"),
        "keep_existing": N_("保留现有站点"),
        "max_updated_at": N_("最后修改（北京时间）"),
        "method": N_("求解方法"),
        "name": N_("名称"),
        "per_town": N_("每个镇街的站点数"),
        "rows": N_("行数"),
        "roads_sha256": N_("道路文件校验码"),
        "siting_job": N_("选址任务"),
        "start": N_("起点"),
        "status_filter": N_("设施状态"),
        "time_limit": N_("求解时间上限（秒）"),
        "closed_sites": N_("推演方案关闭的设施（不保留、不作候选）"),
        "comparison": N_("对比"),
        "datum": N_("坐标系"),
        "demand": N_("需求"),
        "facilities": N_("设施"),
        "fixed_sites": N_("推演方案保留的站点"),
        "gap_hexagons": N_("缺口六边形"),
        "gap_too_far": N_("离道路太远的需求点"),
        "gap_uncovered": N_("未覆盖的需求点"),
        "gap_unreachable": N_("无法到达的需求点"),
        "grid_spacing": N_("网格间距（米）"),
        "hex_size": N_("六边形大小（米）"),
        "layer": N_("图层"),
        "layers": N_("图层"),
        "model": N_("模型"),
        "n_new": N_("新选址数"),
        "p": N_("选址数（p）"),
        "profile": N_("出行方式"),
        "road_stretches": N_("按道路延伸"),
        "roads": N_("道路文件"),
        "rural_threshold": N_("农村阈值"),
        "scenario": N_("方案"),
        "scenario_statuses": N_("方案中的状态"),
        "shape": N_("范围形状"),
        "sites": N_("选址"),
        "statuses": N_("状态"),
        "threshold": N_("阈值"),
        "threshold_value": N_("阈值数值"),
        "thresholds": N_("阈值"),
        "toilet_id": N_("厕所编号"),
        "urban_threshold": N_("城镇阈值"),
        "weight_column": N_("权重列"),
    }
)
_SHARE_SUFFIX = "_weighted_share"


def init_app(app: Flask) -> None:
    """Register the ``field_label`` template filter on ``app``."""
    app.add_template_filter(field_label, "field_label")


def field_label(key: str) -> str:
    """Return ``key`` (dotted for nested values) with each known part named in the page's language."""
    parts = []
    for part in str(key).split("."):
        if part.endswith(_SHARE_SUFFIX) and len(part) > len(_SHARE_SUFFIX):
            parts.append(gettext("加权覆盖比例（%(column)s）", column=part[: -len(_SHARE_SUFFIX)]))
        elif part in FIELD_LABELS:
            parts.append(gettext(FIELD_LABELS[part]))
        else:
            parts.append(part)
    return " · ".join(parts)
