"""Conversation flows: an agent's designed steps, stored as nodes and run by ``pipecat.flows``."""
