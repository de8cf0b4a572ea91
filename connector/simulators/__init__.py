"""Bundled simulators for tests and the demo; the connector package never imports them."""
