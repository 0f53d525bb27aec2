"""STT provider adapters, one module per provider (or family)."""
