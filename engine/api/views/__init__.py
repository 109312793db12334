"""Thin function views of the engine's REST API, one module per API area."""
