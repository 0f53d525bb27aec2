"""Carriers, phone numbers and carrier accounts."""
