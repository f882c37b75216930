"""What may be queued: the checks an asynchronous apply or unapply passes before it becomes a job,
from the documents' headers alone (their items are read by the job). They are the same checks as
the synchronous verbs' (``checks``), so both word every problem the same way."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from gateway.settlement import finality
from gateway.settlement.checks import check_source, check_target, parse_amount
from gateway.settlement.errors import RuleViolation
from gateway.settlement.model import ApplyRequest, Source, Target


def check_queueable(
    source: Source, targets: Mapping[int, Target], request: ApplyRequest, *, today: date, unapply: bool
) -> list[RuleViolation]:
    """Status, account, currency and dates of the source and each named target, finality, and every
    amount (format, precision, positive). Unknown targets are reported by the caller (it resolved
    them)."""
    errors: list[RuleViolation] = []
    check_source(source, errors)
    errors += finality.of_request(source, targets, request, operation="unapplied" if unapply else "applied")
    day = request.effective_date or today
    for t in request.targets:
        target = targets.get(t.target_id)
        if target is None:
            continue
        check_target(source, target, t.field, day, errors)
        parse_amount(t.amount, source.currency, (*t.field, "amount"), errors)
        for j, item in enumerate(t.items or ()):
            parse_amount(item.amount, source.currency, (*t.field, "items", str(j), "amount"), errors)
    return errors
