"""Settlement mutations and the preview: parse the input, call the service, answer the payload."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from strawberry.types import Info

from gateway.ids import encode, ref
from gateway.services import settlement as svc
from gateway.services.settlement import ItemInput, Outcome, SettleInput, TargetInput
from gateway.settlement.errors import Rejected, RuleViolation
from gateway.settlement.model import CREDIT_MEMO, PAYMENT
from resolvers.documents import actor
from resolvers.relations import ctx
from schema import inputs as i
from schema import payloads as p
from schema.enums import ApplicationRule, WarningCode
from schema.errors import UserError, Warning, user_errors
from schema.query import NODE_BUILDERS, by_ref
from schema.types import ApplicationLine

P = TypeVar("P")


def targets(invoices: list[Any] | None, debit_memos: list[Any] | None) -> tuple[TargetInput, ...]:
    out = []
    for kind, name, type_name, given in (
        ("INVOICE", "invoices", "Invoice", invoices),
        ("DEBIT_MEMO", "debitMemos", "DebitMemo", debit_memos),
    ):
        for n, t in enumerate(given or []):
            items = (
                None
                if t.items is None
                else tuple(ItemInput(x.target_item_id, x.amount, x.credit_memo_item_id) for x in t.items)
            )
            out.append(TargetInput(kind, ref(t.id, type_name), t.amount, items, (name, str(n))))
    return tuple(out)


def settle_input(info: Info, source_kind: str, source_id: str, input: Any) -> SettleInput:
    rule = getattr(input, "application_rule", None)
    return SettleInput(
        source_kind=source_kind,
        source=ref(source_id, "CreditMemo" if source_kind == CREDIT_MEMO else "Payment"),
        targets=targets(input.invoices, input.debit_memos),
        effective_date=input.effective_date,
        rule=None if rule is None else rule.value,
        idempotency_key=input.idempotency_key or ctx(info).idempotency_key,
    )


async def run(
    info: Info,
    call: Callable[[], Awaitable[Outcome]],
    answer: Callable[[Outcome], Awaitable[P]],
    failed: Callable[[list[UserError]], P],
) -> P:
    try:
        outcome = await call()
    except (Rejected, RuleViolation) as exc:
        return failed(user_errors(exc))
    await ctx(info).after_write()
    prime(info, outcome)
    return await answer(outcome)


# table -> the loader of its rows by id
LOADERS_BY_TABLE = {
    "application": "applications_by_id",
    "credit_memo": "credit_memos_by_id",
    "payment": "payments_by_id",
}


def prime(info: Info, outcome: Outcome) -> None:
    """The rows the move returned as committed answer the payload without reading them again. They
    are the caller's: the move found its source in the caller's scope, its application with it."""
    loaders = ctx(info).loaders
    for table, row in outcome.written:
        loaders.prime(LOADERS_BY_TABLE[table], row.id, row)


def warnings(outcome: Outcome) -> list[Warning]:
    return [Warning(code=WarningCode(code), message=message) for code, message in outcome.warnings]


def rule(outcome: Outcome) -> ApplicationRule | None:
    return None if outcome.rule is None else ApplicationRule(outcome.rule)


# GraphQL type -> the table of its rows that a move writes and returns
WRITTEN_TABLES = {"Application": "application", "CreditMemo": "credit_memo", "Payment": "payment"}


async def node(info: Info, type_name: str, pk: int | None, outcome: Outcome | None = None) -> Any:
    """The node ``pk`` of ``type_name``: built from the row the move wrote, when it wrote one (the
    caller's, as ``prime`` says: no lookup, no scope check again), else looked up."""
    if pk is None:
        return None
    if outcome is not None:
        table = WRITTEN_TABLES.get(type_name)
        for written, row in outcome.written:
            if written == table and row.id == pk:
                return NODE_BUILDERS[type_name](row)
    return await by_ref(info, type_name, encode(type_name, pk), None)


# source kind -> (GraphQL type, the input field naming the source, the payload field)
SOURCES = {
    CREDIT_MEMO: ("CreditMemo", "credit_memo_id", "credit_memo"),
    PAYMENT: ("Payment", "payment_id", "payment"),
}


async def _settle(info: Info, input: Any, payload: Callable[..., P], kind: str, *, unapply: bool) -> P:
    """Apply or unapply a credit memo or a payment: the same service, the payload of its kind."""
    c = ctx(info)
    type_name, input_field, payload_field = SOURCES[kind]
    data = settle_input(info, kind, getattr(input, input_field), input)

    async def answer(o: Outcome) -> P:
        return payload(
            **{payload_field: await node(info, type_name, o.source_id, o)},
            application=await node(info, "Application", o.application_id, o),
            applied_rule=rule(o),
            warnings=warnings(o),
        )

    return await run(
        info,
        lambda: svc.settle(c.db, c.settings, data, unapply=unapply, actor=actor(info), commits=c.commits),
        answer,
        lambda errors: payload(user_errors=errors),
    )


async def apply_credit_memo(info: Info, input: i.ApplyCreditMemoInput) -> p.CreditMemoSettlementPayload:
    return await _settle(info, input, p.CreditMemoSettlementPayload, CREDIT_MEMO, unapply=False)


async def unapply_credit_memo(info: Info, input: i.UnapplyCreditMemoInput) -> p.CreditMemoSettlementPayload:
    return await _settle(info, input, p.CreditMemoSettlementPayload, CREDIT_MEMO, unapply=True)


async def apply_payment(info: Info, input: i.ApplyPaymentInput) -> p.PaymentSettlementPayload:
    return await _settle(info, input, p.PaymentSettlementPayload, PAYMENT, unapply=False)


async def unapply_payment(info: Info, input: i.ApplyPaymentInput) -> p.PaymentSettlementPayload:
    return await _settle(info, input, p.PaymentSettlementPayload, PAYMENT, unapply=True)


async def _mirror(info: Info, input: Any, payload: Callable[..., P], *, write_off: bool) -> P:
    """Reverse or write off: both create a debit memo and apply the memo fully to it."""
    c = ctx(info)

    async def answer(o: Outcome) -> P:
        return payload(
            credit_memo=await node(info, "CreditMemo", o.source_id, o),
            debit_memo=await node(info, "DebitMemo", o.debit_memo_id, o),
            application=await node(info, "Application", o.application_id, o),
        )

    return await run(
        info,
        lambda: svc.reverse_or_write_off(
            c.db,
            c.settings,
            memo=ref(input.credit_memo_id, "CreditMemo"),
            write_off=write_off,
            memo_date=input.memo_date,
            apply_date=getattr(input, "apply_effective_date", None),
            reason_code=input.reason_code,
            comment=input.comment,
            idempotency_key=input.idempotency_key or c.idempotency_key,
            actor=actor(info),
            commits=c.commits,
        ),
        answer,
        lambda errors: payload(user_errors=errors),
    )


async def reverse_credit_memo(info: Info, input: i.ReverseCreditMemoInput) -> p.ReverseCreditMemoPayload:
    return await _mirror(info, input, p.ReverseCreditMemoPayload, write_off=False)


async def write_off_credit_memo(info: Info, input: i.WriteOffCreditMemoInput) -> p.WriteOffCreditMemoPayload:
    return await _mirror(info, input, p.WriteOffCreditMemoPayload, write_off=True)


async def refund_credit_memo(info: Info, input: i.RefundCreditMemoInput) -> p.CreditMemoSettlementPayload:
    c = ctx(info)

    async def answer(o: Outcome) -> p.CreditMemoSettlementPayload:
        return p.CreditMemoSettlementPayload(
            credit_memo=await node(info, "CreditMemo", o.source_id),
            application=await node(info, "Application", o.application_id),
        )

    return await run(
        info,
        lambda: svc.refund(
            c.db,
            c.settings,
            memo=ref(input.credit_memo_id, "CreditMemo"),
            amount=input.amount,
            refund_date=input.refund_date,
            method=input.method,
            idempotency_key=input.idempotency_key or c.idempotency_key,
            actor=actor(info),
            commits=c.commits,
        ),
        answer,
        lambda errors: p.CreditMemoSettlementPayload(user_errors=errors),
    )


async def preview(info: Info, input: i.ApplyCreditMemoInput) -> p.ApplicationPreview:
    c = ctx(info)
    data = settle_input(info, CREDIT_MEMO, input.credit_memo_id, input)
    try:
        o = await svc.settle(c.db, c.settings, data, unapply=False, actor=actor(info), preview=True)
    except (Rejected, RuleViolation) as exc:
        return p.ApplicationPreview(user_errors=user_errors(exc))
    lines = [ApplicationLine.preview(m, o.currency) for m in o.movements]
    return p.ApplicationPreview(applied_rule=rule(o), lines=lines, warnings=warnings(o))


async def _submit(info: Info, input: Any, *, unapply: bool) -> p.JobPayload:
    c = ctx(info)
    data = settle_input(info, CREDIT_MEMO, input.credit_memo_id, input)
    try:
        job_id = await svc.submit(c.db, c.settings, data, unapply=unapply, actor=actor(info))
    except (Rejected, RuleViolation) as exc:
        return p.JobPayload(user_errors=user_errors(exc))
    await c.after_write()
    return p.JobPayload(job=await node(info, "Job", job_id))


async def apply_credit_memo_async(info: Info, input: i.ApplyCreditMemoInput) -> p.JobPayload:
    return await _submit(info, input, unapply=False)


async def unapply_credit_memo_async(info: Info, input: i.UnapplyCreditMemoInput) -> p.JobPayload:
    return await _submit(info, input, unapply=True)
