"""Outbound dialling at scale: batch jobs (and, later, campaigns) over the job runner."""
