"""Accounts: passwords and sessions, API keys, OIDC links, roles, rate limits, the audit log."""
