"""Candidate sites for the siting models: road nodes near the town seats, or a layer or point file.

Generated candidates are nodes of the prepared road network that lie within a straight-line radius
of a town seat (镇街驻地) and end a road piece of one of the given OSM ``highway`` classes, so a site
is on a proper street near the town's centre. Each node goes to the town with the nearest seat.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from analyses.inputs import load_points
from layers import schema

if TYPE_CHECKING:
    from geo.prepared import PreparedNetwork
    from layers.district import District
    from layers.store import Store

logger = logging.getLogger(__name__)

#: Road classes a facility may stand on by default: streets with traffic and residential roads.
DEFAULT_HIGHWAY_CLASSES = ("primary", "secondary", "tertiary", "unclassified", "residential", "living_street")
#: Columns of every candidate table.
NODE_ID = "node_id"
HIGHWAY = "highway"
SEAT_DISTANCE_M = "seat_distance_m"
SOURCE = "source"
_LINK_SUFFIX = "_link"


def candidates_near_seats(
    net: PreparedNetwork,
    towns: gpd.GeoDataFrame,
    *,
    radius_m: float = 2000.0,
    highway_classes: Sequence[str] = DEFAULT_HIGHWAY_CLASSES,
    per_town_max: int | None = None,
    crs: str | None = None,
) -> gpd.GeoDataFrame:
    """Return road nodes within ``radius_m`` of each town seat, on roads of ``highway_classes``.

    Parameters
    ----------
    net
        The prepared road network; its ``piece_highway`` gives each road piece's class.
    towns
        Town seats as points (any CRS) with ``town_code`` (``District.towns``).
    radius_m
        Straight-line distance from the seat, metres.
    highway_classes
        A node qualifies when a road piece of one of these classes ends at it (``X_link`` counts as
        ``X``).
    per_town_max
        At most this many nodes per town: the one nearest the seat, then nodes spread evenly over
        the ranking by distance to the seat (so the picks reach out to ``radius_m``). All when None.
    crs
        CRS of the result; the network's when None.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per node: ``id`` (``C-<town_code>-<OSM node id>``), ``town_code``, ``node_id``,
        ``highway`` (the most important class ending there), ``seat_distance_m``, ``source``
        (``"generated"``) and the node's point; sorted by town, then distance. A node near two seats
        goes to the nearer one. Towns with no qualifying node have no rows.

    Raises
    ------
    ValueError
        If ``towns`` lacks ``town_code`` or a CRS, or a number is not positive.
    """
    if schema.TOWN_CODE not in towns.columns:
        msg = f"`towns` lacks the column {schema.TOWN_CODE!r}; it has {list(towns.columns)!r}."
        raise ValueError(msg)
    if towns.crs is None:
        msg = "`towns` has no CRS; set it (WGS-84 is EPSG:4326)."
        raise ValueError(msg)
    if not (np.isfinite(radius_m) and radius_m > 0):
        msg = f"`radius_m` must be a positive number of metres; got {radius_m!r}."
        raise ValueError(msg)
    if per_town_max is not None and (int(per_town_max) != per_town_max or per_town_max < 1):
        msg = f"`per_town_max` must be a positive whole number or None; got {per_town_max!r}."
        raise ValueError(msg)
    wanted = {str(h).removesuffix(_LINK_SUFFIX) for h in highway_classes}
    piece_class = np.char.replace(net.piece_highway.astype(str), _LINK_SUFFIX, "")
    ok = np.isin(piece_class, sorted(wanted))
    node_class = _node_classes(net, piece_class, ok)
    nodes = np.flatnonzero(node_class != "")
    seats = towns.to_crs(net.crs)
    codes = seats[schema.TOWN_CODE].astype(str).to_numpy()
    sx, sy = seats.geometry.x.to_numpy(), seats.geometry.y.to_numpy()
    dist = np.hypot(net.node_x[nodes][:, None] - sx[None, :], net.node_y[nodes][:, None] - sy[None, :])
    nearest = np.argmin(dist, axis=1) if len(sx) else np.zeros(len(nodes), int)
    d = dist[np.arange(len(nodes)), nearest] if len(sx) else np.full(len(nodes), np.inf)
    inside = d <= radius_m
    table = pd.DataFrame(
        {
            schema.TOWN_CODE: codes[nearest[inside]] if len(sx) else np.zeros(0, str),
            NODE_ID: net.node_id[nodes[inside]],
            HIGHWAY: node_class[nodes[inside]],
            SEAT_DISTANCE_M: d[inside],
            "_pos": nodes[inside],
        }
    ).sort_values([schema.TOWN_CODE, SEAT_DISTANCE_M, NODE_ID], kind="stable")
    if per_town_max is not None:
        groups = table.groupby(schema.TOWN_CODE, sort=False)
        rank = groups.cumcount().to_numpy()
        size = groups[NODE_ID].transform("size").to_numpy()
        keep = np.zeros(len(table), bool)
        for n in np.unique(size):
            keep |= (size == n) & np.isin(rank, _spread(int(n), int(per_town_max)))
        table = table.loc[keep]
    table.insert(0, schema.ID, "C-" + table[schema.TOWN_CODE] + "-" + table[NODE_ID].astype(str))
    table[SOURCE] = "generated"
    pos = table.pop("_pos").to_numpy()
    gdf = gpd.GeoDataFrame(
        table.reset_index(drop=True),
        geometry=gpd.points_from_xy(net.node_x[pos], net.node_y[pos]),
        crs=net.crs,
    )
    missing = sorted(set(codes) - set(gdf[schema.TOWN_CODE]))
    logger.info(
        "Generated %s candidate nodes within %.0f m of %d town seats on %s roads%s",
        f"{len(gdf):,}",
        radius_m,
        len(codes),
        "/".join(sorted(wanted)),
        f"; none near towns {missing!r}" if missing else "",
    )
    return gdf if crs is None else gdf.to_crs(crs)


def _node_classes(net: PreparedNetwork, classes: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Return, per node, the most important class (``HIGHWAY_RANK``) of a qualifying piece ending there."""
    from geo.profiles import HIGHWAY_RANK

    rank = {h: i for i, h in enumerate(HIGHWAY_RANK)}
    piece_rank = np.array([rank.get(c, len(rank)) for c in classes.tolist()], dtype=np.int64)
    node = np.r_[net.piece_u[ok], net.piece_v[ok]]
    order = np.lexsort((np.r_[piece_rank[ok], piece_rank[ok]], node))
    node_sorted = node[order]
    first = np.r_[True, node_sorted[1:] != node_sorted[:-1]] if len(node) else np.zeros(0, bool)
    out = np.full(net.n_nodes, "", dtype=object)
    out[node_sorted[first]] = np.r_[classes[ok], classes[ok]][order][first]
    return out


def _spread(n: int, k: int) -> np.ndarray:
    """Return ``min(n, k)`` positions from 0 to ``n - 1``, evenly spaced and starting at 0."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


def load_candidates(
    source: str,
    *,
    store: Store,
    district: District,
    statuses: tuple[str, ...] | None = None,
    datum: str | None = None,
) -> gpd.GeoDataFrame:
    """Return candidate sites from a stored layer or a point file (``analyses.inputs.load_points``).

    Parameters
    ----------
    source
        A layer name (e.g. ``service_centre``: its sites become candidates) or a CSV/XLSX (``id``,
        ``lon``, ``lat``; needs ``datum``), GeoJSON or GeoPackage file of points. Rows without
        ``town_code`` get the town whose area holds them.
    statuses, datum
        As in ``load_points``.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326 points with ``id``, ``town_code``, ``source`` (``source`` as given) and the input's
        other columns.

    Raises
    ------
    ValueError
        If the source is unknown, a file is malformed, or ids repeat.
    """
    points = load_points(source, store=store, district=district, statuses=statuses, datum=datum)
    ids = points[schema.ID].astype(str)
    repeated = ids[ids.duplicated()].unique().tolist()
    if repeated:
        msg = f"Candidate ids must be unique in {source!r}; repeated: {repeated[:5]!r}. Rename them."
        raise ValueError(msg)
    points = points.assign(**{schema.ID: ids, SOURCE: source})
    points[schema.TOWN_CODE] = points[schema.TOWN_CODE].astype("string")
    return points


__all__: Sequence[str] = ("DEFAULT_HIGHWAY_CLASSES", "candidates_near_seats", "load_candidates")
