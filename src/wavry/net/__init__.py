"""Networking around the RIFT core: the impairment link model and the virtual-time simulator."""
