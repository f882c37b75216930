"""Settlement mutations. Until the settlement engine lands they answer NOT_AVAILABLE, honestly."""

from __future__ import annotations

from strawberry.types import Info

from gateway.settlement.errors import NotAvailable
from schema import inputs as i
from schema import payloads as p
from schema.errors import user_error


def _not_yet(what: str) -> list:  # type: ignore[type-arg]
    return [user_error(NotAvailable(f"{what} is not available yet in this version of the gateway"))]


async def apply_credit_memo(info: Info, input: i.ApplyCreditMemoInput) -> p.CreditMemoSettlementPayload:
    return p.CreditMemoSettlementPayload(user_errors=_not_yet("applyCreditMemo"))


async def unapply_credit_memo(info: Info, input: i.UnapplyCreditMemoInput) -> p.CreditMemoSettlementPayload:
    return p.CreditMemoSettlementPayload(user_errors=_not_yet("unapplyCreditMemo"))


async def apply_credit_memo_async(info: Info, input: i.ApplyCreditMemoInput) -> p.JobPayload:
    return p.JobPayload(user_errors=_not_yet("applyCreditMemoAsync"))


async def unapply_credit_memo_async(info: Info, input: i.UnapplyCreditMemoInput) -> p.JobPayload:
    return p.JobPayload(user_errors=_not_yet("unapplyCreditMemoAsync"))


async def reverse_credit_memo(info: Info, input: i.ReverseCreditMemoInput) -> p.ReverseCreditMemoPayload:
    return p.ReverseCreditMemoPayload(user_errors=_not_yet("reverseCreditMemo"))


async def write_off_credit_memo(info: Info, input: i.WriteOffCreditMemoInput) -> p.WriteOffCreditMemoPayload:
    return p.WriteOffCreditMemoPayload(user_errors=_not_yet("writeOffCreditMemo"))


async def refund_credit_memo(info: Info, input: i.RefundCreditMemoInput) -> p.CreditMemoSettlementPayload:
    return p.CreditMemoSettlementPayload(user_errors=_not_yet("refundCreditMemo"))


async def apply_payment(info: Info, input: i.ApplyPaymentInput) -> p.PaymentSettlementPayload:
    return p.PaymentSettlementPayload(user_errors=_not_yet("applyPayment"))


async def unapply_payment(info: Info, input: i.ApplyPaymentInput) -> p.PaymentSettlementPayload:
    return p.PaymentSettlementPayload(user_errors=_not_yet("unapplyPayment"))


async def preview(info: Info, input: i.ApplyCreditMemoInput) -> p.ApplicationPreview:
    return p.ApplicationPreview(user_errors=_not_yet("previewCreditMemoApplication"))
