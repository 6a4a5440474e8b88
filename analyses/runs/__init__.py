"""One run per analysis, shared by the command line and the planner's jobs.

Each kind has frozen parameters (``from_options`` reads the CLI's options, ``from_form`` the planner
form's stored dict), one ``run_*`` function taking the parameters, the store, the district, a
``Network`` (the prepared road network of a road file) and a ``Stages`` progress, and a frozen
result whose ``to_dict()`` is the stable JSON the CLI writes and whose ``to_file(path)`` writes it
by extension. Results are keyed by our ids. Nothing here prints or knows the web.

Modules: ``common`` (progress, network, versions, writing), ``coverage`` (coverage with its
scenario, gaps, the household report, one toilet's effect), ``service_areas`` and ``siting``.
"""
