"""OpenAgg: an open-source financial data aggregation platform speaking MX's Platform API."""

__version__ = "0.1.0"
