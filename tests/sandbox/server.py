"""Sandbox servers on free loopback ports for tests (real HTTP, real sockets)."""
from dealersync.sandbox.runner import free_port, serving  # noqa: F401
