"""Helpers shared by tests/test_plugin_*.py: build each plugin once per test session."""
