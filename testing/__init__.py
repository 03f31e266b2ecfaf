"""Test doubles that users may use for their own tests: :mod:`.mock_openai`, a fault-injecting
OpenAI-compatible chat server on loopback. No production module imports this package (an
import-linter contract keeps it so)."""
