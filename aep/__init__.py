"""The wire client for AEP-compatible APIs (pure Python, httpx; no Django): IMS OAuth tokens, one
method per endpoint of spec/aep-api.md, typed results, pagination, retries with backoff,
AEPTransientError/AEPPermanentError. Arrives with issue 6.
"""
