"""Tenants: one per client (controller), addressed by a slug like the seeds' client prefixes."""
