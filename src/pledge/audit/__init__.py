"""The audit log: append-only, one HMAC chain per tenant, no plaintext personal data."""
