"""How a run reports progress: its stage texts and the ``Stages`` it reports to (imports nothing heavy)."""

from __future__ import annotations

from typing import Protocol

#: Stage texts of the runs (English; the planner stores its own words for them, ``webmap.views.planner.kind``).
STAGE_NETWORK = "preparing the road network (cached after the first run)"
STAGE_INPUTS = "reading the facility and demand points"
STAGE_COVERAGE = "measuring coverage"
STAGE_SCENARIO = "measuring the scenario with the added facilities"
STAGE_FLAT = "measuring coverage again on flat costs (no slopes)"
STAGE_GAPS = "finding the gaps"
STAGE_GAPS_ROADS = "finding the gaps and the road stretches beyond"
STAGE_AREAS = "drawing the service areas"
STAGE_AREA_POINTS = "counting the demand points inside the service areas"
STAGE_CANDIDATES = "gathering the candidate sites"
STAGE_SOLVING = "network costs from the demand points to the candidate sites and solving"
STAGE_SERVICES = "finding each household's nearest facility of every service"
STAGE_WRITING = "writing the result files"


class Stages(Protocol):
    """Where a run reports its progress: the CLI prints it, a planner job stores it."""

    def expect(self, total: int) -> None:
        """Say how many stages the run has (the caller's own stages included)."""

    def stage(self, text: str) -> None:
        """Announce the next stage."""

    def __call__(self, text: str, fraction: float) -> None:
        """Report a share (0–1) of the current stage (the siting models' ``progress``)."""


class Silent:
    """A ``Stages`` that reports nothing (runs called from code or tests)."""

    def expect(self, total: int) -> None:
        """Ignore the stage count."""

    def stage(self, text: str) -> None:
        """Ignore the stage."""

    def __call__(self, text: str, fraction: float) -> None:
        """Ignore the fraction."""
