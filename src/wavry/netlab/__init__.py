"""A network-namespace NAT lab for the connectivity scenarios (Linux, root).

``NatLab`` builds the topology (docs/connectivity.md, "Network namespaces"), ``start_stun``
runs coturn on its public network, and ``wavry.netlab.rig.ControlPlaneRig`` runs the control
plane, a relay and logged-in host/client on top of it.
"""

from wavry.netlab.coturn import StunServer, start_stun, stun_mapped
from wavry.netlab.topology import (
    CLIENT_IP,
    HOST_IP,
    LAB_PREFIX,
    NAT_PUBLIC_IP,
    PUBLIC_NET,
    SERVICE_IP,
    NatLab,
    NatMode,
    NetlabError,
    NetlabUnavailable,
    Side,
    check_available,
    cleanup_stale,
)

__all__ = [
    "CLIENT_IP",
    "HOST_IP",
    "LAB_PREFIX",
    "NAT_PUBLIC_IP",
    "PUBLIC_NET",
    "SERVICE_IP",
    "NatLab",
    "NatMode",
    "NetlabError",
    "NetlabUnavailable",
    "Side",
    "StunServer",
    "check_available",
    "cleanup_stale",
    "start_stun",
    "stun_mapped",
]
