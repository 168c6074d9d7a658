"""Connectors: how OpenAgg talks to institutions. See ``base.Connector``."""
