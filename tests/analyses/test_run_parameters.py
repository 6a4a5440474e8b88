"""Defaults of the runs' parameters (analyses.runs): the statuses counted and the uncapped p-median cutoff.

The CLI and the planner's forms build these parameters; the defaults here are what makes the CLI
count the same facilities as the web (facilities in service, a scenario's planned ones).
"""

from __future__ import annotations

import pytest

from analyses.runs.common import status_option
from analyses.runs.coverage import CoverageParameters, GapsParameters
from analyses.runs.service_areas import ServiceAreasParameters
from analyses.runs.siting import SitingParameters, whole_network_cutoff
from layers import schema


def test_statuses_default_to_facilities_in_service_as_the_web():
    toilets = CoverageParameters(facilities=schema.ACCESSIBLE_TOILET, demand="village", thresholds=("800m",))
    assert toilets.statuses == ("accepted",)
    assert toilets.scenario_statuses == ()  # no scenario
    with_scenario = CoverageParameters(facilities=schema.ACCESSIBLE_TOILET, demand="village", thresholds=("800m",),
                                       scenario=schema.ACCESSIBLE_TOILET)  # fmt: skip
    assert with_scenario.scenario_statuses == ("planned", "under_construction", "completed")
    assert GapsParameters(facilities=schema.SERVICE_CENTRE, demand="village", threshold="800m").statuses == ("open",)
    areas = ServiceAreasParameters(facilities=schema.REHAB_STATION, thresholds=("800m",))
    assert areas.statuses == ("open",)
    # given statuses are kept; () counts every status; a point file has no default
    assert GapsParameters(
        facilities=schema.SERVICE_CENTRE, demand="v", threshold="1km", statuses=("planned",)
    ).statuses == ("planned",)
    assert ServiceAreasParameters(facilities=schema.REHAB_STATION, thresholds=("1km",), statuses=()).statuses == ()
    assert ServiceAreasParameters(facilities="sites.csv", thresholds=("1km",)).statuses == ()


def test_the_status_option_reads_all_and_refuses_all_with_others():
    assert status_option(()) is None
    assert status_option(("open", "planned")) == ("open", "planned")
    assert status_option(("all",)) == ()
    with pytest.raises(ValueError, match="counts every facility; drop the other statuses"):
        status_option(("open", "all"))


def test_cli_options_without_status_count_facilities_in_service():
    options = {
        "facilities": schema.SERVICE_CENTRE,
        "demand": "village",
        "profile": "walk",
        "thresholds": ("800m",),
        "urban_threshold": None,
        "rural_threshold": None,
        "statuses": (),
        "scenario": None,
        "scenario_statuses": (),
        "weight_column": None,
        "datum": None,
        "grid_spacing": 400.0,
        "roads": None,
    }
    assert CoverageParameters.from_options(options).statuses == ("open",)
    assert CoverageParameters.from_options({**options, "statuses": ("all",)}).statuses == ()
    form = {"facilities": schema.SERVICE_CENTRE, "demand": "village", "profile": "walk", "thresholds": "800m"}
    assert CoverageParameters.from_form(form).statuses == CoverageParameters.from_options(options).statuses


def test_whole_network_cutoff_by_hand(grid_net):
    # the grid: 24 residential pieces of 100 m and one of steps (walk only), plus 10 km of slack for access
    assert whole_network_cutoff(grid_net, "walk") == "12500m"
    assert whole_network_cutoff(grid_net, "wheelchair") == "12400m"
    # drive: the 24 residential pieces at 19 km/h: 2400 m * 3.6 / 19 = 454.74 s
    assert whole_network_cutoff(grid_net, "drive") == "10455s"


def test_siting_asks_for_a_threshold_or_a_layer_where_needed():
    assert (
        SitingParameters(layer=schema.SERVICE_CENTRE, demand="village", threshold=None, model="p_median", p=2).threshold
        is None
    )
    with pytest.raises(ValueError, match="--model mclp needs --threshold"):
        SitingParameters(layer=schema.SERVICE_CENTRE, demand="village", threshold=None, p=2)
    with pytest.raises(ValueError, match="give --layer"):
        SitingParameters(layer=None, demand="village", threshold="15min", p=2)
    SitingParameters(layer=None, demand="village", threshold="15min", p=2, candidates="sites.csv")
    with pytest.raises(ValueError, match="--keep-existing keeps the sites of --layer"):
        SitingParameters(
            layer=None, demand="village", threshold="15min", p=2, candidates="sites.csv", keep_existing=True
        )
