"""The engine's AEP-compatible REST API (spec/aep-api.md). Imports no dashboard app and no core."""
