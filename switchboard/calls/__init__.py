"""Calls: the state machine, events, transcripts and recordings every call leaves behind."""
