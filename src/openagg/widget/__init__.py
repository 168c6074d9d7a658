"""The Connect widget's static files (HTML, one JavaScript module, CSS) and the demo
host page. Served by `openagg.api.routes.widget`; no build step, nothing downloaded."""
