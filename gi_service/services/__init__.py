"""The business rules. A service takes a SQLAlchemy session, knows nothing of HTTP and never commits: the
face that calls it (api/, web/, public/, the CLI) owns the transaction.

One module per concern, kept flat: 28 modules of 60 to 800 lines, each named for what it rules, so a folder
per domain would add a level to every import without separating anything that is mixed today. By domain:

- registry: ``registry`` (GI records, versions, areas, search), ``spatial`` (PostGIS or shapely),
  ``jurisdiction`` (adcode subtrees, point to county), ``gtins`` (what a GTIN names), ``opendata``.
- producers and accounts: ``producers`` (producers, plots, authorizations), ``uscc``, ``imports`` (bulk
  import), ``accounts`` (organisations, users, tokens), ``passwords`` (rules, lockout), ``totp``,
  ``audit`` (the staff audit trail).
- ledger: ``marks`` (quota, requests, approval, printing, issuing, activation, voiding), ``ledger`` (the hash
  chain and checkpoints), ``labels`` (what goes on the labels, print files), ``reports`` (台账 per printer,
  producer, GI and year), ``epcis`` (EPCIS 2.0 export).
- verification: ``verification`` (the verdict and the page's story), ``checklog`` (checks buffered and
  flushed), ``scans`` (the check log and counters), ``partitions`` (the log by month on PostgreSQL),
  ``signals`` (copied-label signals).
- supervision: ``findings``, ``clues``, ``cases``, ``credit``.
- reporting: ``statistics``, ``annual_reports``.
"""
