"""Gateway signaling: the ``GET /ws`` WebSocket where hosts and clients meet (docs/signaling.md).

Modules: ``messages`` (the one JSON dialect), ``hub`` (bound connections, presence, routing,
access policy), ``fanout`` / ``redis_backend`` (one replica or many through Redis), ``limits``
(origin, connection caps, frame size, message rate, bind deadline), ``master_client`` (relay
leases from the master), ``ws`` (the FastAPI router), ``settings`` (``SignalingSettings``).
"""
