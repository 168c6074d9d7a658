"""The MX-compatible HTTP face."""
