"""The console's page files (HTML, JS modules, CSS), served by api/routes/console.py."""
