"""Signed webhooks out: request state changes for integrators, erasure and rectification
notices for recipients and sub-processors. Queued in the transaction, sent after commit,
retried with backoff."""
