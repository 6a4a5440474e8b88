"""The web pages and the JSON API, one blueprint module per audience.

Where a page goes
-----------------
- ``public``: the public map, facility list and facility pages (no sign-in, no personal data).
- ``api``: the JSON API (``/api``; its OpenAPI description in ``openapi``).
- ``admin``: staff accounts (admins).
- ``caseworker``: households of the caseworker's towns, status changes, visit lists.
- ``toilets``: the accessible-toilet register, its edits and imports.
- ``planner``: the planner's analyses as jobs, results, comparisons and targets (a package: one module
  per analysis kind).

A new page is a route on the blueprint of its audience (a new audience: a module with its ``bp``,
registered in ``webmap.create_app``). Pages draw maps with ``webmap.maps`` and never call folium
themselves; templates are in ``webmap/templates/<blueprint>/``.
"""
