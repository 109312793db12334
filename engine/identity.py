"""The identity graph: identities seen together in one record are linked; a connected component
is one profile.

A profile's id is the md5 of the smallest identity key in its component, so it stays the same
across rebuilds as long as that identity stays in the graph (and matches DuckDB's md5(), which
computes the same id in SQL for identities that were never linked to another).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# AEP excludes graphs with more identities than this from segmentation (spec §8.3, hard).
MAX_IDENTITIES_PER_GRAPH = 50


def profile_id_for(key: str) -> str:
    return hashlib.md5(key.encode("utf-8")).hexdigest()  # noqa: S324 -- an id, not security


@dataclass(frozen=True)
class Graph:
    """identity key → profile id, for identities linked to at least one other identity."""

    profile_of: dict[str, str]
    sizes: dict[str, int]  # profile id → number of identities

    @property
    def oversized(self) -> dict[str, int]:
        return {pid: size for pid, size in self.sizes.items() if size > MAX_IDENTITIES_PER_GRAPH}


def build_graph(groups: Iterable[Sequence[str]]) -> Graph:
    """Union-find over groups of identity keys that appeared together in a record."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        root = key
        while parent[root] != root:
            root = parent[root]
        while parent[key] != root:  # path compression
            parent[key], key = root, parent[key]
        return root

    for group in groups:
        if len(group) < 2:
            continue
        first = group[0]
        parent.setdefault(first, first)
        root_a = find(first)
        for other in group[1:]:
            parent.setdefault(other, other)
            root_b = find(other)
            if root_a != root_b:
                # the smaller key becomes the root, so a root is its component's minimum
                if root_b < root_a:
                    root_a, root_b = root_b, root_a
                parent[root_b] = root_a

    profile_of: dict[str, str] = {}
    sizes: dict[str, int] = {}
    ids: dict[str, str] = {}
    for key in parent:
        root = find(key)
        pid = ids.get(root)
        if pid is None:
            pid = ids[root] = profile_id_for(root)
        profile_of[key] = pid
        sizes[pid] = sizes.get(pid, 0) + 1
    return Graph(profile_of, sizes)
