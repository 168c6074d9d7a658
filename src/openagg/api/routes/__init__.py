"""Route modules, one per MX resource family."""
