"""The portal's page files (HTML, JS modules, CSS), served by api/routes/portal.py."""
