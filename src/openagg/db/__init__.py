"""Tables, engine set-up and migrations."""
