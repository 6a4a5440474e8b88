"""The siting run: candidate sites, a location model on road costs, before/after with today's sites."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from analyses.inputs import load_demand
from analyses.runs import common, stages
from analyses.runs.common import Network, PlaceNames, as_tuple, jsonable, text_or_none
from analyses.runs.coverage import village_weight
from analyses.runs.stages import Silent, Stages
from layers import schema

if TYPE_CHECKING:
    from analyses.costs import Placer
    from analyses.siting import SitingComparison, SitingResult
    from layers.district import District
    from layers.privacy import Reader
    from layers.store import Store

#: Facilities open today, per layer (toilets: ``analyses.siting.kept_toilets``).
OPEN_STATUSES = ("open",)
#: Column of the assignment table naming the site a demand point is assigned to.
SITE_ID = "site_id"
#: The CLI's short model names → the models of ``analyses.siting``.
MODEL_KEYS = {"mclp": "max_coverage", "pmedian": "p_median", "lscp": "set_cover", "pcenter": "p_center"}
#: Written as ``parameters.candidates`` when candidates are generated.
GENERATED = "generated near the town seats"
#: Models that need a threshold (a coverage radius); the others minimise cost and may go without one.
THRESHOLD_MODELS = ("max_coverage", "set_cover")
#: Slack (m or s) added to the whole network's cost in ``whole_network_cutoff``: covers the access legs
#: from the points to the roads (at most the snapping distance, hundreds of metres).
_ACCESS_SLACK = 10_000.0


@dataclass(frozen=True)
class SitingParameters:
    """What a siting run chooses.

    Parameters
    ----------
    layer
        Facility layer to plan (its open facilities are today's sites); None when ``candidates`` is a
        point file: the sites are chosen among its points only, with no sites today.
    demand
        Demand source (``analyses.inputs.load_points``).
    model
        ``max_coverage``, ``p_median``, ``set_cover`` or ``p_center``.
    threshold
        Coverage radius (max coverage, set cover: required) or cost beyond which demand is unserved
        (p-median, p-center); None for these: no cap (``whole_network_cutoff``), every reachable
        pair counts at its cost.
    p, n_new, per_town
        Sites in total; or new sites beyond today's; exactly this many per town.
    profile, weight_column
        Travel profile; demand weight column.
    candidates
        Candidate sites (layer or point file); None: road nodes near the town seats, at most
        ``candidates_per_town`` (0: all) within ``candidate_radius``.
    keep_existing, excluded, capacity
        Keep today's sites open; candidate ids that may not be chosen; demand weight one site may serve.
    fixed_sites
        Sites kept open wherever they are (a what-if scenario's sites): ``(id, lon, lat, name)`` in
        WGS-84. Each is a candidate forced open that counts toward ``p``; one with the id of a facility
        of ``layer`` replaces it (at the scenario's location, today's site when the facility is open).
    closed_sites
        Ids of sites a what-if scenario closed: neither kept nor candidates (dropped from the pool, from
        today's sites and so from the before/after comparison); an id not in the pool closes nothing.
    method, time_limit
        ``exact`` (HiGHS, within ``time_limit`` seconds) or ``heuristic``.
    datum, grid_spacing, roads
        As for coverage.

    Raises
    ------
    ValueError
        If the options contradict each other (the message names the options and the fix).
    """

    layer: str | None
    demand: str
    threshold: str | None
    model: str = "max_coverage"
    p: int | None = None
    n_new: int | None = None
    per_town: int | None = None
    profile: str = "drive"
    weight_column: str | None = None
    candidates: str | None = None
    candidate_radius: str = "2km"
    candidates_per_town: int | None = 20
    keep_existing: bool = False
    excluded: tuple[str, ...] = ()
    capacity: float | None = None
    fixed_sites: tuple[tuple[str, float, float, str], ...] = ()
    closed_sites: tuple[str, ...] = ()
    method: str = "exact"
    time_limit: float = 60.0
    datum: str | None = None
    grid_spacing: float = 400.0
    roads: str | None = None

    def __post_init__(self) -> None:
        from analyses.costs import parse_threshold

        model = self.model
        problems = []
        if model not in MODEL_KEYS.values():
            problems.append(f"the model must be one of {sorted(MODEL_KEYS.values())!r}; got {model!r}")
        if self.threshold is None and model in THRESHOLD_MODELS:
            short = {v: k for k, v in MODEL_KEYS.items()}[model]
            problems.append(f"--model {short} needs --threshold (the coverage radius), e.g. 15min or 800m")
        if self.layer is None and (self.candidates is None or self.candidates in schema.ALL_LAYERS):
            problems.append("give --layer (the facility layer to plan), or --candidates FILE to choose among "
                            "the points of a file")  # fmt: skip
        if self.layer is None and self.keep_existing:
            problems.append("--keep-existing keeps the sites of --layer; give --layer or drop --keep-existing")
        if self.p is not None and self.n_new is not None:
            problems.append("give --p (sites in total) or --new (sites added), not both")
        if model == "set_cover" and (self.p is not None or self.n_new is not None):
            problems.append("--model lscp finds the fewest sites itself; drop --p/--new")
        if model != "set_cover" and self.p is None and self.n_new is None and self.per_town is None:
            problems.append(f"--model {model} needs --p, --new or --per-town")
        if self.capacity is not None and model not in ("p_median", "set_cover"):
            problems.append("--capacity works with --model pmedian or lscp")
        if self.p is not None and len(self.fixed_sites) > self.p:
            problems.append(f"{len(self.fixed_sites)} sites are kept open but --p is {self.p}; raise --p")
        if len({s[0] for s in self.fixed_sites}) < len(self.fixed_sites):
            problems.append("the kept sites repeat an id; give each its own id")
        both = sorted({s[0] for s in self.fixed_sites} & set(self.closed_sites))
        if both:
            problems.append(f"sites {both[:5]!r} are both kept open and closed; keep or close each, not both")
        if self.n_new is not None and self.n_new < 1:
            problems.append("--new must be at least 1")
        if self.candidates is None and parse_threshold(self.candidate_radius).weight != "length":
            problems.append(f"`--candidate-radius` is a distance such as 2km; got {self.candidate_radius!r}")
        if problems:
            raise ValueError("; ".join(problems) + ".")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SitingParameters:
        """Read ``accessplan site``'s options (``--model mclp|pmedian|lscp|pcenter``, ``--exclude a,b``)."""
        return cls(layer=text_or_none(options["layer"]), demand=options["demand"],
                   threshold=text_or_none(options["threshold"]),
                   model=MODEL_KEYS.get(options["model_key"], options["model_key"]), p=options["p"],
                   n_new=options["n_new"], per_town=options["per_town"], profile=options["profile"],
                   weight_column=text_or_none(options["weight_column"]),
                   candidates=text_or_none(options["candidates_source"]),
                   candidate_radius=options["candidate_radius"],
                   candidates_per_town=options["candidates_per_town"], keep_existing=options["keep_existing"],
                   excluded=tuple(e for raw in options["excluded"] for e in as_tuple(raw)),
                   capacity=options["capacity"], method="heuristic" if options["heuristic"] else "exact",
                   time_limit=float(options["time_limit"]), datum=options["datum"],
                   grid_spacing=float(options["grid_spacing"]), roads=options["roads"])  # fmt: skip

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> SitingParameters:
        """Read the planner's siting form (generated candidates; villages weighted by population).

        ``fixed_sites`` (optional): the kept sites as mappings with ``id``, ``lon``, ``lat`` and ``name``;
        ``closed_sites`` (optional): the ids of the sites the scenario closed.
        """
        fixed = tuple((str(s["id"]), float(s["lon"]), float(s["lat"]), str(s.get("name") or ""))
                      for s in form.get("fixed_sites") or ())  # fmt: skip
        return cls(layer=form["layer"], demand=form["demand"], threshold=form["threshold"], model=form["model"],
                   p=form["p"], per_town=form["per_town"], profile=form["profile"],
                   weight_column=village_weight(form["demand"]), candidate_radius=form["candidate_radius"],
                   candidates_per_town=form["candidates_per_town"], keep_existing=bool(form["keep_existing"]),
                   fixed_sites=fixed, closed_sites=tuple(str(i) for i in form.get("closed_sites") or ()),
                   method=form["method"], time_limit=float(form["time_limit"]))  # fmt: skip


@dataclass(frozen=True)
class SitingRun:
    """A siting run's complete result.

    Parameters
    ----------
    parameters
        The model's parameters with the run's (layer, demand, candidates, today's sites, method, data versions).
    result
        The solution (``analyses.siting.SitingResult``).
    comparison
        Coverage with today's sites only (before) against the solution (after); None without sites today.
    sites
        Every candidate site with ``selected``, ``new``, ``current``, ``lon``/``lat`` and ``place`` (where it is:
        town · village · road, ``analyses.places.PlaceNamer`` in Chinese).
    assignment
        Per demand point: ``demand_id``, ``site_id``, ``cost``, ``covered`` (after), ``covered_before``,
        ``town_code``/``village_code`` where known; located at the point.
    threshold_value
        The cutoff in the model's unit (m or s).
    """

    parameters: Mapping[str, Any]
    result: SitingResult
    comparison: SitingComparison | None
    sites: gpd.GeoDataFrame
    assignment: gpd.GeoDataFrame
    threshold_value: float
    names: PlaceNames = field(default_factory=PlaceNames, repr=False)

    SUFFIXES = (".json", ".gpkg", ".xlsx", ".csv", ".geojson")

    @property
    def chosen(self) -> gpd.GeoDataFrame:
        """The selected sites."""
        return self.sites[self.sites["selected"]].astype({"current": bool})

    @property
    def summary(self) -> dict[str, Any]:
        """Objective, covered share, optimality, gap, solver, time, unserved and sites chosen."""
        payload = self.result.to_dict()
        keep = ("objective", "covered_share", "optimal", "gap", "bound", "solver", "time_s", "unserved")
        return {**{k: payload[k] for k in keep}, "sites": len(self.result.selected)}

    @property
    def by_town(self) -> pd.DataFrame:
        """Per town (indexed by code): the model's table (sites, covered share...)."""
        return self.result.by_town

    @property
    def by_village(self) -> pd.DataFrame:
        """Per village (indexed by town and village code): points, covered before and after."""
        if schema.VILLAGE_CODE not in self.assignment.columns:
            return pd.DataFrame()
        grouped = self.assignment.groupby([schema.TOWN_CODE, schema.VILLAGE_CODE])
        table = grouped.size().rename("points").to_frame()
        table["covered_before"] = grouped["covered_before"].sum().astype(int)
        table["covered_after"] = grouped["covered"].sum().astype(int)
        return table

    def to_dict(self, *, points: bool = True) -> dict[str, Any]:
        """Return the stable JSON of the CLI.

        Keys: ``SitingResult.to_dict``'s (``model``, ``parameters``, ``selected``,
        ``assignment`` unless ``points=False``, ``objective``, ``covered_share``, ``optimal``, ``gap``...,
        ``by_town``) and ``threshold_value``, ``sites`` (chosen), ``by_village``, ``comparison`` (``summary``
        and ``by_town``; None without sites today).
        """
        payload = self.result.to_dict()
        if not points:
            payload.pop("assignment")
        payload["parameters"] = dict(self.parameters)
        payload["threshold_value"] = self.threshold_value
        payload["sites"] = pd.DataFrame(self.chosen.drop(columns="geometry")).to_dict("records")
        payload["by_village"] = self.by_village.reset_index().to_dict("records")
        payload["comparison"] = None
        if self.comparison is not None:
            payload["comparison"] = {"summary": dict(self.comparison.summary),
                                     "by_town": self.comparison.by_town.reset_index().to_dict("records")}  # fmt: skip
        return self.names.rows(jsonable(payload))

    def to_file(self, path: str | Path) -> Path:
        """Write the result by extension.

        JSON, GeoPackage (``sites`` chosen, ``assignment``, ``candidates``), GeoJSON
        (chosen sites), CSV (chosen sites) or XLSX (sites, assignment, per town, per village, before/after,
        summary).

        Raises
        ------
        ValueError
            If the extension is not one of ``SUFFIXES``.
        """
        from layers.io import write_features

        suffix = common.suffix_of(path, self.SUFFIXES, "siting")
        plain_sites = pd.DataFrame(self.chosen.drop(columns="geometry"))
        if suffix == ".json":
            common.write_json(self.to_dict(), path)
        elif suffix == ".gpkg":
            write_features(self.names.table(self.chosen), path, layer_name="sites")
            write_features(self.names.table(self.assignment), path, layer_name="assignment", append=True)
            candidates = self.names.table(self.sites.astype({"current": bool}))
            write_features(candidates, path, layer_name="candidates", append=True)
        elif suffix == ".geojson":
            write_features(self.names.table(self.chosen), path, layer_name="sites")
        elif suffix == ".csv":
            common.write_csv(plain_sites, path, names=self.names)
        else:
            summary = {k: v for k, v in self.to_dict(points=False).items()
                       if k not in ("sites", "by_town", "by_village", "comparison")}  # fmt: skip
            sheets = {"sites": plain_sites, "assignment": pd.DataFrame(self.assignment.drop(columns="geometry")),
                      "by_town": self.by_town, "by_village": self.by_village.reset_index()}  # fmt: skip
            if self.comparison is not None:
                sheets["before_after"] = self.comparison.by_town
            sheets["summary"] = common.summary_sheet(summary)
            common.write_sheets(path, sheets, names=self.names)
        return Path(path)


def whole_network_cutoff(net: Any, profile: str) -> str:
    """Return a cost no route on ``net`` reaches, as threshold text: the cap of an uncapped p-median.

    The whole network's length (walk, wheelchair; metres) or travel time (drive; seconds) over the
    profile's usable pieces, plus ``_ACCESS_SLACK``: a shortest route uses each piece at most once.
    """
    pg = net.profile(profile)
    usable = pg.piece_usable
    if profile == "drive":
        return f"{float(pg.piece_time_s[usable].sum()) + _ACCESS_SLACK:.0f}s"
    return f"{float(net.piece_length_m[usable].sum()) + _ACCESS_SLACK:.0f}m"


def siting_candidates(
    placer: Placer, store: Store, district: District, *, source: str | None, radius: str = "2km",
    per_town: int | None = 20, datum: str | None = None,
) -> gpd.GeoDataFrame:  # fmt: skip
    """Return candidate sites: from a layer or point file, or road nodes near the town seats.

    Parameters
    ----------
    placer
        The prepared network (generated candidates are its nodes).
    store, district
        Where layers are read; whose towns' seats candidates are generated near.
    source
        A layer name or point file; None generates candidates near the seats.
    radius
        Generated candidates: largest distance from a seat, as text with a unit (``"2km"``).
    per_town
        Generated candidates: at most this many per town (None or 0: all).
    datum
        Datum of a CSV/XLSX point file.

    Raises
    ------
    ValueError
        If the source cannot be read.
    """
    from analyses.candidates import candidates_near_seats, load_candidates
    from analyses.costs import parse_threshold

    if source:
        return load_candidates(source, store=store, district=district, datum=datum)
    return candidates_near_seats(placer.net, district.towns, radius_m=parse_threshold(radius).value,
                                 per_town_max=per_town or None, crs=schema.WGS84)  # fmt: skip


def site_pool(layer_name: str, layer: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list]:
    """Return every site the model may open (today's facilities first) and the ids open today.

    Raises
    ------
    ValueError
        If candidate ids repeat each other or ids of the layer.
    """
    from analyses.siting import kept_toilets

    if layer_name == schema.ACCESSIBLE_TOILET:
        open_now = kept_toilets(layer) if len(layer) else pd.Series(False, index=layer.index)
        offered = layer  # planned new builds are candidates too
    else:
        open_now = layer[schema.STATUS].isin(OPEN_STATUSES)
        offered = layer.loc[open_now]
    facilities = offered.assign(source=layer_name, current=open_now.loc[offered.index].to_numpy())
    columns = [schema.ID, schema.TOWN_CODE, schema.NAME, "source", "current", "geometry"]
    cands = candidates.assign(current=False)
    for c in columns:
        if c not in cands.columns:
            cands[c] = None
    pool = pd.concat([facilities[columns], cands[columns].to_crs(facilities.crs or schema.WGS84)], ignore_index=True)
    pool[schema.ID] = pool[schema.ID].astype(str)
    repeated = pool.loc[pool[schema.ID].duplicated(), schema.ID].unique().tolist()
    if repeated:
        msg = f"Candidate ids repeat ids of the {layer_name} layer or each other: {repeated[:5]!r}; rename them."
        raise ValueError(msg)
    pool[schema.TOWN_CODE] = pool[schema.TOWN_CODE].astype(str)
    pool = gpd.GeoDataFrame(pool, geometry="geometry", crs=facilities.crs or schema.WGS84)
    current = pool.loc[pool["current"].astype(bool), schema.ID].tolist()
    return pool, current


def with_fixed_sites(
    sites: gpd.GeoDataFrame, fixed: tuple[tuple[str, float, float, str], ...], district: District
) -> gpd.GeoDataFrame:
    """Return the site pool with the ``fixed`` sites ``(id, lon, lat, name)`` among its candidates.

    A fixed site with the id of a site of the pool replaces it where the fixed site lies (keeping the
    pool's ``current`` flag and name when it has none); the others join as candidates (``source``
    ``fixed``). Each gets the town it lies in (``town_code``), for the per-town quotas.
    """
    if not fixed:
        return sites
    from analyses.inputs import assign_towns

    ids = [s[0] for s in fixed]
    pool = sites.assign(**{schema.ID: sites[schema.ID].astype(str)})
    before = pool.set_index(schema.ID)
    added = gpd.GeoDataFrame(
        {schema.ID: ids,
         schema.NAME: [s[3] or (str(before.at[s[0], schema.NAME]) if s[0] in before.index else "") for s in fixed],
         "source": "fixed",
         "current": [bool(before.at[s[0], "current"]) if s[0] in before.index else False for s in fixed]},
        geometry=gpd.points_from_xy([s[1] for s in fixed], [s[2] for s in fixed]), crs=schema.WGS84,
    ).to_crs(pool.crs or schema.WGS84)  # fmt: skip
    towns = assign_towns(added, district.town_areas, crs=district.crs)[schema.TOWN_CODE]
    added[schema.TOWN_CODE] = towns.astype(str).to_numpy()
    kept = pool[~pool[schema.ID].isin(ids)]
    return gpd.GeoDataFrame(pd.concat([kept, added[kept.columns.intersection(added.columns)]], ignore_index=True),
                            geometry="geometry", crs=pool.crs)  # fmt: skip


def without_closed(sites: gpd.GeoDataFrame, current: list, closed: tuple[str, ...]) -> tuple[gpd.GeoDataFrame, list]:
    """Return the site pool and today's site ids without the ``closed`` ones (a scenario's closed facilities).

    A closed site is neither a candidate nor kept open (``keep_existing``) nor one of today's sites in
    the before/after comparison.
    """
    if not closed:
        return sites, current
    shut = set(closed)
    kept = sites[~sites[schema.ID].astype(str).isin(shut)].reset_index(drop=True)
    return kept, [c for c in current if str(c) not in shut]


def siting_tables(
    result: SitingResult, sites: gpd.GeoDataFrame, demand: gpd.GeoDataFrame, *, threshold: float, kept: Any = (),
    before: Mapping[str, float] | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:  # fmt: skip
    """Return the site table (every candidate, ``selected`` and ``new`` flags, lon/lat) and the assignment.

    The assignment has ``demand_id``, ``site_id``, ``cost``, ``covered`` (cost within ``threshold``, the
    model's cutoff in its unit), ``covered_before`` (the same for the ``before`` costs; False without)
    and the point's ``town_code``/``village_code`` where known, per demand point, in EPSG:4326.
    """
    chosen = set(result.selected)
    kept = set(kept or ())
    wgs = sites.to_crs(schema.WGS84).geometry
    table = sites.assign(
        selected=sites[schema.ID].isin(chosen),
        new=sites[schema.ID].isin(chosen - kept) & ~sites["current"].astype(bool),
        lon=wgs.x,
        lat=wgs.y,
    )
    ids = list(result.assignment)
    assign = pd.DataFrame(
        {"demand_id": ids, SITE_ID: [result.assignment[d] for d in ids], "cost": [result.costs[d] for d in ids]}
    )
    assign["covered"] = assign["cost"] <= threshold
    before = before or {}
    assign["covered_before"] = [bool(before.get(d, float("nan")) <= threshold) for d in ids]
    points = demand.assign(**{schema.ID: demand[schema.ID].astype(str)}).set_index(schema.ID)
    for column in (schema.TOWN_CODE, schema.VILLAGE_CODE):
        if column in points.columns:
            assign[column] = points[column].astype(str).reindex(assign["demand_id"]).to_numpy()
    geometry = points.geometry.reindex(assign["demand_id"])
    located = gpd.GeoDataFrame(assign, geometry=geometry.to_numpy(), crs=demand.crs).to_crs(schema.WGS84)
    return gpd.GeoDataFrame(table, geometry="geometry", crs=sites.crs), located


def run_siting(
    p: SitingParameters,
    *,
    store: Store,
    district: District,
    network: Network,
    reader: Reader,
    progress: Stages | None = None,
) -> SitingRun:
    """Choose sites for a facility layer along the roads, with coverage per town before and after.

    Stages: network, inputs, candidates, costs and solving (the model reports its own fractions as
    ``progress(text, fraction)``); the caller adds one for writing.

    Raises
    ------
    ValueError
        If an input cannot be read, ``excluded`` names unknown sites, or the model is infeasible
        (``analyses.siting.InfeasibleSitingError``, a ``ValueError``).
    TimeoutError
        If the exact solver finds no solution within the time limit.
    """
    from analyses.costs import parse_threshold
    from analyses.places import PlaceNamer
    from analyses.siting import compare_with_current, model_from_network

    progress = progress or Silent()
    progress.expect(5)
    progress.stage(stages.STAGE_NETWORK)
    roads = network(p.roads)
    progress.stage(stages.STAGE_INPUTS)
    layer = store.features(p.layer) if p.layer else _no_facilities()
    demand = load_demand(p.demand, store=store, district=district, reader=reader, datum=p.datum,
                         grid_spacing_m=p.grid_spacing)  # fmt: skip
    progress.stage(stages.STAGE_CANDIDATES)
    candidates = siting_candidates(roads.placer, store, district, source=p.candidates, radius=p.candidate_radius,
                                   per_town=p.candidates_per_town, datum=p.datum)  # fmt: skip
    sites, current = site_pool(p.layer, layer, candidates)
    sites = with_fixed_sites(sites, p.fixed_sites, district)
    unknown = sorted(set(p.excluded) - set(sites[schema.ID]))
    if unknown:
        msg = f"`--exclude` names ids that are not candidate sites: {unknown[:5]!r}."
        raise ValueError(msg)
    sites, current = without_closed(sites, current, p.closed_sites)
    kept = list(dict.fromkeys([*(current if p.keep_existing else []), *(s[0] for s in p.fixed_sites)]))
    options: dict[str, Any] = {"quota": p.per_town, "existing": kept or None,
                               "excluded": [e for e in p.excluded if e not in p.closed_sites] or None,
                               "zone_labels": dict(zip(district.towns[schema.TOWN_CODE].astype(str),
                                                       district.towns[schema.NAME], strict=True))}  # fmt: skip
    if p.model != "set_cover":
        options["p"] = p.p if p.n_new is None else len(current) + p.n_new
    if p.capacity is not None:
        options["capacity"] = p.capacity
    progress.stage(stages.STAGE_SOLVING)
    cutoff = p.threshold or whole_network_cutoff(roads.placer.net, p.profile)
    model = model_from_network(p.model, roads.placer, demand, sites, profile=p.profile, cutoff=cutoff,
                               weight_column=p.weight_column, progress=progress, **options)  # fmt: skip
    result = model.solve(method=p.method, time_limit_s=p.time_limit)
    comparable = [c for c in current if c not in set(p.excluded)]
    comparison = compare_with_current(model, result, comparable) if comparable else None
    threshold = parse_threshold(cutoff).value
    table, assignment = siting_tables(result, sites, demand, threshold=threshold, kept=options["existing"],
                                      before=comparison.before.costs if comparison is not None else None)  # fmt: skip
    table["place"] = PlaceNamer.for_district(district, roads.placer.net).names(table)  # "镇街 · 村 · 路旁", not a code
    parameters = {
        **result.parameters,
        "layer": p.layer,
        "demand": p.demand,
        "candidates": p.candidates or GENERATED,
        "candidate_radius": None if p.candidates else p.candidate_radius,
        "current_sites": current,
        "keep_existing": p.keep_existing,
        "fixed_sites": [s[0] for s in p.fixed_sites],
        "closed_sites": list(p.closed_sites),
        "method": p.method,
        "time_limit_s": p.time_limit,
        "data_versions": common.data_versions(roads.version, demand=demand,
                                              **({"facilities": layer} if p.layer else {})),  # fmt: skip
    }
    return SitingRun(jsonable(parameters), result, comparison, table, assignment, threshold,
                     names=PlaceNames.of(district))  # fmt: skip


def _no_facilities() -> gpd.GeoDataFrame:
    """Return an empty facility layer: the sites are chosen among file candidates only."""
    columns = {c: pd.Series(dtype=object) for c in (schema.ID, schema.TOWN_CODE, schema.NAME, schema.STATUS)}
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=schema.WGS84), crs=schema.WGS84)
