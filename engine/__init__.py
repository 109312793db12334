"""Django app (issues 4 and 5): the built-in AEP-compatible engine: catalog, ingestion, identity
stitching, merge policies, query snapshots in DuckDB, the REST API, preview/segment/export jobs.
"""
