"""Every folium map the app draws, built as plain functions that the views render into their pages.

Where a map goes
----------------
- ``text``: text on a map made inert (``map_text``, ``map_tooltip``, ``map_popup``, ``map_label_icon``,
  ``geojson_dict``, ``labelled_geojson``, ``script_json``). The only module that builds a folium tooltip,
  popup or label icon; every other module draws text through it (``tests/webmap/test_maps.py`` checks).
- ``base``: what every map shares: tile sources from the config, the display datum (GCJ-02 for Amap-like
  tiles), the district's outline and town areas, the start and end of a result map, and
  ``render_map_parts`` (a map → the header, html and script pieces of our page templates).
- ``layers``: the public map's layers: facilities (``FacilityLayer``, clustered when dense), roads
  (``RoadLayer``, fetched per zoom band), town seats, the labels of layers and statuses.
- ``public``: the public map (``public_map``) of the public and toilet pages.
- ``households``: the caseworkers' map of households and visit stops.
- ``results``: the planner's result maps, per analysis kind its display layers and its map.
- ``result_layers``: a result's display layers (dense points as counts per hexagon, simplified polygons),
  written per result as gzip GeoJSON and fetched on demand by the page (``RemoteLayer``).
- ``roads``: the main roads drawn on the public map, read from the district's road file.

A new map is a function in ``results`` (an analysis result) or a module of its own, built from ``base``
and ``text``; views import the function they draw and never call folium themselves.
"""
