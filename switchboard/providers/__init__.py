"""STT, LLM and TTS providers: a registry of adapters around Pipecat services."""
