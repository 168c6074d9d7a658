"""Use cases shared by the API, the widget, the console and the CLI."""
