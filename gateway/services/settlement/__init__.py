"""Settlement use cases, one concept per module: ``inputs`` (the request, its JSON form, the
outcome, and a credit memo's own move once per key), ``applying`` (apply / unapply / preview, and
the job's run), ``mirror`` (reverse and write-off), ``refunds``, ``submission`` (async apply /
unapply). Money moves through ``idempotency.guarded`` in one ``Database.write`` transaction; SQL
lives in ``ledger``, ``postings`` and ``store``; rules in ``gateway.settlement``."""

from gateway.services.settlement.applying import settle, settle_in_job
from gateway.services.settlement.inputs import (
    ItemInput,
    Outcome,
    SettleInput,
    TargetInput,
    from_json,
    to_json,
)
from gateway.services.settlement.mirror import reverse_or_write_off
from gateway.services.settlement.refunds import refund
from gateway.services.settlement.submission import OPERATIONS, submit, validate

__all__ = [
    "OPERATIONS",
    "ItemInput",
    "Outcome",
    "SettleInput",
    "TargetInput",
    "from_json",
    "refund",
    "reverse_or_write_off",
    "settle",
    "settle_in_job",
    "submit",
    "to_json",
    "validate",
]
