"""Preferences (channels × topics), the suppression list, one-click unsubscribe (RFC 8058)
and the public preference center."""
