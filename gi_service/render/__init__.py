"""Formats drawn from the services' results: CSV files, PDF documents, SVG charts and maps.

The services compute and return data (dicts and dataclasses); these modules draw it. A drawing
entry point may take the session and ask a service for its data (``charts.statistics_chart_svg``,
``maps.statistics_map_svg``, ``maps.public_area_map``), so the HTTP layer calls one function per
format; no service imports from here.

* ``tables``     — a table declared once (columns with their kind) for both file formats;
* ``sheets``     — the tables an office hands on: statistics, annual listing and rollup, registry, ledger report
  (台账), serious-violator list;
* ``csv``        — those tables as CSV;
* ``xlsx``       — those tables as Excel workbooks (typed cells, frozen header, constant memory);
* ``pdf``        — the annual reports: listing, rollup, one producer's report (reportlab, CJK CID font);
* ``charts``     — accessible, deterministic SVG bar charts (and the statistics charts drawn with them);
* ``maps``       — one projection for every map: production areas, the statistics map;
* ``geopackage`` — the open data's production areas;
* ``cells``      — values as the files print them (yes/no, China time).
"""
