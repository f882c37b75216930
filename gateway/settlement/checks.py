"""The request checks apply and unapply share: status, account, currency, dates, amounts, items.

Every check appends to ``errors`` instead of raising, so that one request reports every problem at
once; the verbs in ``engine`` raise ``Rejected`` with the whole list before computing anything.
Document-level problems of the credit memo or payment carry the empty field path ``()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from gateway.settlement import money
from gateway.settlement.errors import (
    AccountMismatch,
    CurrencyMismatch,
    DuplicateTarget,
    EffectiveDateTooEarly,
    Field,
    InvalidStatus,
    InvalidValue,
    ItemAmountsMismatch,
    ItemNotInDocument,
    NotFound,
    RuleViolation,
    SourceItemRuleViolation,
)
from gateway.settlement.model import (
    PAYMENT,
    POSTED,
    PRORATION,
    RULES,
    SOURCE_ITEM,
    ApplyRequest,
    Source,
    SourceItem,
    Target,
    TargetItem,
)

EFFECTIVE_DATE: Field = ("effectiveDate",)


@dataclass(slots=True)
class Entry:
    """One parsed entry of a target's ``items``; None where the input named nothing valid."""

    field: Field
    target_item: TargetItem | None
    source_item: SourceItem | None
    names_source: bool
    amount: int | None


@dataclass(slots=True)
class Line:
    """One parsed target of the request."""

    field: Field
    target: Target
    amount: int | None
    entries: list[Entry] | None


def source_label(source: Source) -> str:
    return f"{'payment' if source.kind == PAYMENT else 'credit memo'} {source.number}"


def check_source(source: Source, errors: list[RuleViolation]) -> None:
    if source.status != POSTED:
        errors.append(
            InvalidStatus(
                f"{source_label(source)} is {source.status}; it must be POSTED", status=source.status
            )
        )


def resolve_rule(
    request: ApplyRequest, default_rule: str, source: Source, errors: list[RuleViolation]
) -> str:
    """The request's rule, else the default. A payment has no items: SOURCE_ITEM named in the
    request is a violation; SOURCE_ITEM as the configured default means PRORATION (ours)."""
    rule = request.rule or default_rule
    if rule not in RULES:
        errors.append(InvalidValue(f"unknown application rule {rule!r}", field=("applicationRule",)))
        return PRORATION
    if rule == SOURCE_ITEM and source.kind == PAYMENT:
        if request.rule:
            errors.append(
                SourceItemRuleViolation(
                    "a payment has no items, so the SOURCE_ITEM rule cannot apply it",
                    field=("applicationRule",),
                )
            )
        return PRORATION
    return rule


def effective_date(
    request: ApplyRequest,
    source: Source,
    today: date,
    errors: list[RuleViolation],
    *,
    after_latest: bool,
) -> date:
    """The request's date or today; never before the source's date nor, when ``after_latest``,
    before its latest application."""
    day = request.effective_date or today
    if day < source.doc_date:
        errors.append(
            EffectiveDateTooEarly(
                f"effective date {day} is before the date of {source_label(source)} ({source.doc_date})",
                field=EFFECTIVE_DATE,
            )
        )
    latest = source.latest_application_date
    if after_latest and latest is not None and day < latest:
        errors.append(
            EffectiveDateTooEarly(
                f"effective date {day} is before the latest application of {source_label(source)} ({latest})",
                field=EFFECTIVE_DATE,
            )
        )
    return day


def parse_amount(
    value: Decimal, currency: str, field: Sequence[str], errors: list[RuleViolation]
) -> int | None:
    try:
        return money.positive_minor(value, currency, field=field)
    except RuleViolation as error:
        errors.append(error)
        return None


def check_target(
    source: Source, target: Target, field: Field, day: date, errors: list[RuleViolation]
) -> None:
    if target.status != POSTED:
        errors.append(
            InvalidStatus(
                f"{target.number} is {target.status}; it must be POSTED",
                field=field,
                status=target.status,
            )
        )
    if target.account_id != source.account_id:
        errors.append(
            AccountMismatch(
                f"{target.number} belongs to another account than {source_label(source)}", field=field
            )
        )
    if target.currency != source.currency:
        errors.append(
            CurrencyMismatch(
                f"{target.number} is in {target.currency}, {source_label(source)} in {source.currency}",
                field=field,
            )
        )
    if day < target.doc_date:
        errors.append(
            EffectiveDateTooEarly(
                f"effective date {day} is before the date of {target.number} ({target.doc_date})",
                field=EFFECTIVE_DATE,
            )
        )


def parse_lines(
    source: Source,
    targets: Mapping[int, Target],
    request: ApplyRequest,
    day: date,
    errors: list[RuleViolation],
) -> list[Line]:
    """The request's targets with their amounts and items in minor units; what cannot be parsed is
    reported and left out (an unknown or repeated target), or kept with None (an amount, an item)."""
    lines: list[Line] = []
    seen: set[int] = set()
    memo_items = {i.id: i for i in source.items}
    for ta in request.targets:
        field = ta.field
        target = targets.get(ta.target_id)
        if target is None:
            errors.append(NotFound(ta.kind, ta.target_id, field=(*field, "id")))
            continue
        if target.id in seen:
            errors.append(DuplicateTarget(f"{target.number} appears more than once", field=field))
            # left out, but its amounts are still checked: every error comes back at once
            parse_amount(ta.amount, source.currency, (*field, "amount"), errors)
            for j, it in enumerate(ta.items or ()):
                parse_amount(it.amount, source.currency, (*field, "items", str(j), "amount"), errors)
            continue
        seen.add(target.id)
        check_target(source, target, field, day, errors)
        amount = parse_amount(ta.amount, source.currency, (*field, "amount"), errors)
        entries: list[Entry] | None = None
        if ta.items is not None:
            t_items = {i.id: i for i in target.items}
            entries = []
            for j, it in enumerate(ta.items):
                f = (*field, "items", str(j))
                ti = t_items.get(it.target_item_id) if it.target_item_id is not None else None
                if ti is None:
                    ref = it.raw_target_item_id or it.target_item_id
                    errors.append(
                        ItemNotInDocument(
                            f"item {ref} is not an item of {target.number}", field=(*f, "targetItemId")
                        )
                    )
                si = memo_items.get(it.source_item_id) if it.source_item_id is not None else None
                if it.names_source and si is None:
                    ref = it.raw_source_item_id or it.source_item_id
                    errors.append(
                        ItemNotInDocument(
                            f"item {ref} is not an item of {source_label(source)}",
                            field=(*f, "creditMemoItemId"),
                        )
                    )
                amt = parse_amount(it.amount, source.currency, (*f, "amount"), errors)
                entries.append(Entry(f, ti, si, it.names_source, amt))
        lines.append(Line(field, target, amount, entries))
    return lines


def check_item_sums(lines: Sequence[Line], currency: str, errors: list[RuleViolation]) -> None:
    """Given item amounts must add up to the target's amount."""
    for line in lines:
        if line.entries is None or line.amount is None:
            continue
        amounts = [e.amount for e in line.entries]
        if any(a is None for a in amounts):
            continue
        total = sum(a for a in amounts if a is not None)
        if total != line.amount:
            errors.append(
                ItemAmountsMismatch(
                    f"the items of {line.target.number} add up to {money.format_minor(total, currency)},"
                    f" not {money.format_minor(line.amount, currency)}",
                    field=(*line.field, "items"),
                )
            )
