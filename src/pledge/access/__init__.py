"""Who may do what: users and roles, API keys and scopes, login sessions, the tenant scope."""
