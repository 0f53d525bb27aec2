"""Agents: configuration, version history and the runtime-config cache."""
