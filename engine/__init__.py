"""The built-in engine: a local Real-time Customer Profile store serving AEP's REST API.

Catalog datasets whose batches are Parquet files, identity stitching, merge policies, and an
immutable DuckDB query snapshot built from them (see engine/snapshot.py). It imports no
dashboard module; the dashboard reaches it only through the REST API (issue 5).
"""
