"""The real-time side of a call: the Pipecat pipeline an agent's configuration builds."""
