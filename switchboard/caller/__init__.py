"""The local phone: a caller that rings a Switchboard server over Twilio Media Streams.

``switchboard call`` (``command.py``) and the call-latency benchmark use it:
``conversation.run_conversation`` dials (the Twilio voice webhook), speaks
each line in real time through ``media_client.MediaStreamClient``, hears the
agent through a model of the phone's playback buffer (``playback.py``) and
reports voice-to-voice latency and audio gaps per turn.
"""
