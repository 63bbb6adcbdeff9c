"""Finding hubs on the LAN: zeroconf publishing and browsing of ``_gambiarra._tcp.local.``."""
