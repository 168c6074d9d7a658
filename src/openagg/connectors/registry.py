"""Which connectors this platform runs: plugins found through the entry-point group
``openagg.connectors``, the built-in ones included (OpenAgg's own pyproject.toml
registers them the same way a third-party package would).

An entry point's name is the connector's name; its object is a factory called as
``factory(options)``, where ``options`` are the connector's process-wide settings:
``OPENAGG_CONNECTOR_<NAME>_<KEY>=value`` environment variables (key lower-cased),
overridden by ``Settings.connector_options[name]``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from openagg.connectors.base import Connector, InstitutionSpec
from openagg.settings import Settings

GROUP = "openagg.connectors"
log = logging.getLogger("openagg.connectors")


@dataclass(frozen=True)
class Plugin:
    """An installed connector: its entry point and the package that ships it."""

    name: str
    package: str
    version: str
    entry_point: metadata.EntryPoint


def installed() -> dict[str, Plugin]:
    """Every connector installed in this Python environment, by name."""
    found: dict[str, Plugin] = {}
    for ep in metadata.entry_points(group=GROUP):
        dist = ep.dist
        package = dist.metadata["Name"] if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        if ep.name in found and found[ep.name].package != package:
            log.warning(
                "connector %r is installed twice (%s and %s); using %s",
                ep.name,
                found[ep.name].package,
                package,
                found[ep.name].package,
            )
            continue
        found[ep.name] = Plugin(ep.name, package, version, ep)
    return found


def options_for(name: str, settings: Settings) -> dict[str, str]:
    prefix = f"OPENAGG_CONNECTOR_{name.upper()}_"
    options = {
        key[len(prefix) :].lower(): value
        for key, value in os.environ.items()
        if key.startswith(prefix)
    }
    options.update(settings.connector_options.get(name, {}))
    return options


def build_connectors(settings: Settings) -> dict[str, Connector]:
    """One instance of each installed connector. A connector whose package fails to
    load is left out (and logged): the start-up check then names the institutions
    that need it."""
    built: dict[str, Connector] = {}
    for name, plugin in installed().items():
        try:
            factory: Any = plugin.entry_point.load()
            built[name] = factory(options_for(name, settings))
        except Exception:
            log.exception("connector %r (%s) failed to load", name, plugin.package)
    return built


def builtin_institutions(connectors: dict[str, Connector]) -> list[InstitutionSpec]:
    """The institutions the connectors serve out of the box."""
    specs: list[InstitutionSpec] = []
    for name, connector in connectors.items():
        offer = getattr(connector, "institutions", None)
        for spec in offer() if offer is not None else []:
            if spec.connector != name:
                log.warning("connector %r offers %s for another connector", name, spec.code)
                continue
            specs.append(spec)
    return specs
