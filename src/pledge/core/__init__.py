"""Shared building blocks: configuration, database, clock, identifiers, errors."""
