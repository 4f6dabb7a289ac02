"""Versioned privacy notices and consent wordings: exact text, language, hash, effective date."""
