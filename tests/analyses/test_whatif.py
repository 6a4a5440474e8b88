"""What-if sessions: every edit gives the coverage a full `measure_coverage` run gives for the same sites."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from analyses.costs import Placer
from analyses.coverage import measure_coverage
from analyses.whatif import WhatIfSession
from tests.analyses.test_coverage import _points
from tests.geo.conftest import CRS, X0, Y0

TO_WGS84 = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)


def _lonlat(x: float, y: float) -> dict[str, float]:
    lon, lat = TO_WGS84.transform(x, y)
    return {"lon": lon, "lat": lat}


def _same(a, b) -> None:
    flat_a, flat_b = (pd.json_normalize(x.summary).iloc[0].to_dict() for x in (a, b))
    assert flat_a == pytest.approx(flat_b, rel=1e-9, nan_ok=True)
    pd.testing.assert_frame_equal(a.by_town, b.by_town)
    pd.testing.assert_frame_equal(a.by_village, b.by_village)
    covered = [c for c in a.points.columns if c.startswith("covered_")]
    pd.testing.assert_frame_equal(a.points[covered], b.points[covered])
    np.testing.assert_allclose(a.points.filter(like="cost_"), b.points.filter(like="cost_"), rtol=1e-9)


def test_edits_on_the_grid_give_hand_derived_coverage(grid_net):
    placer = Placer(grid_net, max_snap_m=500)
    demand = _points([("A", X0 + 300, Y0), ("B", X0, Y0 + 300)])  # nodes (0, 3) and (3, 0)
    session = WhatIfSession(placer, _points([("F", X0, Y0)]), demand, profile="walk", thresholds=["200m"])
    # F at (0, 0) is 300 m from both by walking
    assert session.result().points["cost_m"].tolist() == pytest.approx([300.0, 300.0])
    assert session.result().summary["covered_200m"]["covered"] == 0
    # a site at (0, 2) is 100 m from A: A covered
    after = session.add_site("N", **_lonlat(X0 + 200, Y0))
    assert after.points["cost_m"].tolist() == pytest.approx([100.0, 300.0], abs=1e-6)
    assert after.points["covered_200m"].tolist() == [True, False]
    # moved to (2, 0): 100 m from B, 400 m from A (F at 300 m is nearer)
    moved = session.move_site("N", **_lonlat(X0, Y0 + 200))
    assert moved.points["cost_m"].tolist() == pytest.approx([300.0, 100.0], abs=1e-6)
    assert moved.points["facility_id_m"].tolist() == ["F", "N"]
    # F closed: A walks to N at (2, 0): 300 west + 200 north = 500 m
    closed = session.close("F")
    assert closed.points["cost_m"].tolist() == pytest.approx([500.0, 100.0], abs=1e-6)
    assert closed.parameters["n_facilities"] == 1 and session.in_service == ["N"]
    reopened = session.reopen("F")
    assert reopened.points["cost_m"].tolist() == pytest.approx([300.0, 100.0], abs=1e-6)


def test_edits_name_their_mistakes(grid_net):
    placer = Placer(grid_net, max_snap_m=500)
    session = WhatIfSession(placer, _points([("F", X0, Y0)]), _points([("A", X0 + 300, Y0)]), profile="walk",
                            thresholds=["200m"])  # fmt: skip
    with pytest.raises(ValueError, match="F 已存在"):
        session.add_site("F", **_lonlat(X0, Y0))
    with pytest.raises(ValueError, match="没有编号为 X"):
        session.close("X")
    session.close("F")
    with pytest.raises(ValueError, match="已不在服务中"):
        session.close("F")


def test_every_edit_equals_a_full_run_on_bishan(bishan_net, bishan_layer, bishan):
    """Households and a 2 km grid of Bishan, walking and driving thresholds: 12 edits, each checked from scratch."""
    from analyses.inputs import assign_towns, grid_demand, mark_urban

    placer = Placer(bishan_net)
    households = mark_urban(bishan_layer("household"), bishan.villages)[["id", "town_code", "village_code", "urban",
                                                                          "geometry"]]  # fmt: skip
    grid = assign_towns(grid_demand(bishan.boundary, crs=bishan.crs, spacing_m=2000), bishan.town_areas,
                        crs=bishan.crs)  # fmt: skip
    demand = pd.concat([households, grid.to_crs(households.crs)], ignore_index=True)
    centres = bishan_layer("service_centre", status="open")
    kwargs = {"profile": "walk", "thresholds": ["1500m", "20min"], "class_thresholds": {"urban": "1000m",
              "rural": "30min"}}  # fmt: skip
    session = WhatIfSession(placer, centres, demand, **kwargs)
    _same(session.result(), measure_coverage(placer, centres, demand, **kwargs))
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = bishan.boundary.total_bounds
    existing = centres["id"].tolist()
    assert len(existing) >= 3
    for step in range(12):
        kind = step % 4
        if kind == 0:
            session.add_site(f"new-{step}", lon=rng.uniform(minx, maxx), lat=rng.uniform(miny, maxy))
        elif kind == 1:
            session.close(existing[step // 4])
        elif kind == 2:
            new = [s for s in session.in_service if s.startswith("new-")]
            session.move_site(new[-1], lon=rng.uniform(minx, maxx), lat=rng.uniform(miny, maxy))
        else:
            session.reopen(existing[step // 4])
        full = measure_coverage(placer, session.facilities(), demand, **kwargs)
        _same(session.result(), full)


def test_a_removed_site_is_forgotten_and_its_demand_goes_back(grid_net):
    placer = Placer(grid_net, max_snap_m=500)
    demand = _points([("A", X0 + 300, Y0)])  # node (0, 3)
    session = WhatIfSession(placer, _points([("F", X0, Y0)]), demand, profile="walk", thresholds=["200m"])
    session.add_site("N", **_lonlat(X0 + 200, Y0))  # 100 m from A
    removed = session.remove_site("N")
    assert removed.points["cost_m"].tolist() == pytest.approx([300.0], abs=1e-6)  # back to F, 300 m
    assert removed.points["facility_id_m"].tolist() == ["F"] and "N" not in session.sites
    again = session.add_site("N", **_lonlat(X0 + 300, Y0 + 100))  # the id is free again: (1, 3), 100 m from A
    assert again.points["cost_m"].tolist() == pytest.approx([100.0], abs=1e-6)
    session.close("F")
    assert session.remove_site("F").summary["unreachable"] == 0  # a closed site is forgotten too
    with pytest.raises(ValueError, match="没有编号为 F"):
        session.reopen("F")
