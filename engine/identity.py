"""The identity graph: identities seen together in one record are linked; a connected component
is one profile.

Components are found in DuckDB by label propagation: every identity starts with its own key as
label and repeatedly takes the smallest label of the records it appears in, until nothing
changes (as many rounds as the graph is wide). A profile's id is the md5 of its component's
smallest identity key, so it stays the same across rebuilds as long as that identity stays in
the graph, and an identity never linked to another has md5(its own key) without any lookup.
"""

from __future__ import annotations

import hashlib

import duckdb

from engine.duck import one, scalar

# AEP excludes graphs with more identities than this from segmentation (spec §8.3, hard).
MAX_IDENTITIES_PER_GRAPH = 50
MAX_ROUNDS = 10_000  # a safety net; real graphs settle in a handful of rounds


def profile_id_for(key: str) -> str:
    return hashlib.md5(key.encode("utf-8")).hexdigest()  # noqa: S324 -- an id, not security


def stitch(con: duckdb.DuckDBPyConnection, groups_sql: str) -> dict[str, int]:
    """Create `identity_profile(key, _profile_id)` for every identity linked to another.

    `groups_sql` selects one column `keys`: the sorted, distinct identity keys of a record,
    for records with at least two.
    """
    con.execute(f"CREATE TEMP TABLE id_groups AS SELECT row_number() OVER () AS g, keys "
                f"FROM (SELECT DISTINCT keys FROM ({groups_sql}))")
    con.execute("CREATE TEMP TABLE id_pairs AS SELECT g, unnest(keys) AS key FROM id_groups")
    con.execute("""CREATE TEMP TABLE id_label AS
                   SELECT p.key, min(gr.keys[1]) AS lab
                   FROM id_pairs p JOIN id_groups gr USING (g) GROUP BY p.key""")
    rounds = 0
    while rounds < MAX_ROUNDS:
        rounds += 1
        con.execute("""CREATE OR REPLACE TEMP TABLE id_group_label AS
                       SELECT p.g, min(l.lab) AS lab FROM id_pairs p JOIN id_label l USING (key)
                       GROUP BY p.g""")
        con.execute("""CREATE OR REPLACE TEMP TABLE id_label_next AS
                       SELECT p.key, min(gl.lab) AS lab FROM id_pairs p
                       JOIN id_group_label gl USING (g) GROUP BY p.key""")
        changed = scalar(con, """SELECT count(*) FROM id_label_next n JOIN id_label l USING (key)
                                 WHERE n.lab < l.lab""")
        con.execute("CREATE OR REPLACE TEMP TABLE id_label AS SELECT * FROM id_label_next")
        if changed == 0:
            break
    con.execute("CREATE TABLE identity_profile AS "
                "SELECT key, md5(lab) AS _profile_id FROM id_label")
    linked, graphs = one(
        con, "SELECT count(*), count(DISTINCT _profile_id) FROM identity_profile")
    for table in ("id_groups", "id_pairs", "id_label", "id_group_label", "id_label_next"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return {"linked_identities": linked, "graphs": graphs, "graph_rounds": rounds}
