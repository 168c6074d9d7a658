"""What connector authors and OpenAgg's own tests share: a scripted connector for
tests of the engine, and the conformance suite every connector must pass
(``openagg connectors check NAME --scenario FILE``)."""

from openagg.testing.conformance import Check, Report, Scenario, run_conformance
from openagg.testing.scripted import ScriptedConnector, Step, checking_account, transaction

__all__ = [
    "Check",
    "Report",
    "Scenario",
    "ScriptedConnector",
    "Step",
    "checking_account",
    "run_conformance",
    "transaction",
]
