"""A local stand-in for the parts of HubSpot the gateway uses.

The sandbox is its own aiohttp application: it imports nothing of the gateway, so it can run
inside ``mail-gateway serve``, alone from the command line, or as a test fixture, and it answers
HubSpot's official clients unchanged.
"""

from .app import SandboxServer, build_app, start_sandbox
from .state import SandboxOptions

__all__ = ["SandboxOptions", "SandboxServer", "build_app", "start_sandbox"]
