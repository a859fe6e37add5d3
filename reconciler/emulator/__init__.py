"""A local stand-in for a Dataverse org (spec §6): an ASGI app on a SQLite file.

Core code never imports this package; only target wiring (``reconciler.targets``) and the
``reconciler emulator`` command do.
"""

from reconciler.emulator.app import EmulatorApp, EmulatorConfig, create_app

__all__ = ["EmulatorApp", "EmulatorConfig", "create_app"]
