"""Switchboard: self-hosted AI voice agents for phone calls."""

__version__ = "0.1.0"
