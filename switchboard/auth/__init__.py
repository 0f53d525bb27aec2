"""Workspaces, users, API keys and roles."""
