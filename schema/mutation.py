"""The Mutation root. Each field parses its input, calls one service and answers a payload."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from gateway.ids import encode, ref
from gateway.services import documents as svc
from resolvers import memo_edits, memo_files, settlement
from resolvers.documents import account_ref, actor, credit_requests, mutate, new_items
from resolvers.permissions import Requires
from resolvers.relations import ctx
from schema import inputs as i
from schema import payloads as p
from schema.query import by_ref


def _memo_ref(raw: str):
    return ref(raw, "CreditMemo")


@strawberry.type
class Mutation:
    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.AccountPayload)])
    async def create_account(self, info: Info, input: i.CreateAccountInput) -> p.AccountPayload:
        return await mutate(
            info,
            lambda: svc.create_account(
                ctx(info).db,
                name=input.name,
                currency=input.currency,
                number=input.number,
                bill_to_email=input.bill_to_email,
            ),
            lambda pk: by_ref_payload(info, "Account", pk, p.AccountPayload, "account"),
            lambda errors: p.AccountPayload(user_errors=errors),
        )

    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.InvoicePayload)])
    async def create_invoice(self, info: Info, input: i.CreateInvoiceInput) -> p.InvoicePayload:
        return await mutate(
            info,
            lambda: svc.create_receivable(
                ctx(info).db,
                kind="INVOICE",
                account=account_ref(input.account_id),
                doc_date=input.invoice_date,
                due_date=input.due_date,
                items=new_items(input.items),
                post=input.post,
            ),
            lambda pk: by_ref_payload(info, "Invoice", pk, p.InvoicePayload, "invoice"),
            lambda errors: p.InvoicePayload(user_errors=errors),
        )

    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.DebitMemoPayload)])
    async def create_debit_memo(self, info: Info, input: i.CreateDebitMemoInput) -> p.DebitMemoPayload:
        return await mutate(
            info,
            lambda: svc.create_receivable(
                ctx(info).db,
                kind="DEBIT_MEMO",
                account=account_ref(input.account_id),
                doc_date=input.memo_date,
                due_date=input.due_date,
                items=new_items(input.items),
                post=input.post,
                reason_code=input.reason_code,
            ),
            lambda pk: by_ref_payload(info, "DebitMemo", pk, p.DebitMemoPayload, "debit_memo"),
            lambda errors: p.DebitMemoPayload(user_errors=errors),
        )

    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.CreditMemoPayload)])
    async def create_credit_memo(self, info: Info, input: i.CreateCreditMemoInput) -> p.CreditMemoPayload:
        return await mutate(
            info,
            lambda: memo_edits.create_memo(info, input),
            lambda pk: by_ref_payload(info, "CreditMemo", pk, p.CreditMemoPayload, "credit_memo"),
            lambda errors: p.CreditMemoPayload(user_errors=errors),
        )

    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.CreditMemoPayload)])
    async def create_credit_memo_from_invoice(
        self, info: Info, input: i.CreateCreditMemoFromInvoiceInput
    ) -> p.CreditMemoPayload:
        return await mutate(
            info,
            lambda: svc.create_credit_memo_from_invoice(
                ctx(info).db,
                invoice=ref(input.invoice_id, "Invoice"),
                memo_date=input.memo_date,
                items=credit_requests(info, input.items),
                post=input.post,
                reason_code=input.reason_code,
                actor=actor(info),
            ),
            lambda pk: by_ref_payload(info, "CreditMemo", pk, p.CreditMemoPayload, "credit_memo"),
            lambda errors: p.CreditMemoPayload(user_errors=errors),
        )

    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.PaymentPayload)])
    async def create_payment(self, info: Info, input: i.CreatePaymentInput) -> p.PaymentPayload:
        return await mutate(
            info,
            lambda: svc.create_payment(
                ctx(info).db,
                account=account_ref(input.account_id),
                amount=str(input.amount),  # the Decimal scalar parses to the client's text
                effective_date=input.effective_date,
            ),
            lambda pk: by_ref_payload(info, "Payment", pk, p.PaymentPayload, "payment"),
            lambda errors: p.PaymentPayload(user_errors=errors),
        )

    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.CreditMemoPayload)])
    async def post_credit_memo(self, info: Info, id: strawberry.ID) -> p.CreditMemoPayload:
        return await _memo_transition(info, id, "post")

    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.CreditMemoPayload)])
    async def unpost_credit_memo(self, info: Info, id: strawberry.ID) -> p.CreditMemoPayload:
        return await _memo_transition(info, id, "unpost")

    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.CreditMemoPayload)])
    async def cancel_credit_memo(self, info: Info, id: strawberry.ID) -> p.CreditMemoPayload:
        return await _memo_transition(info, id, "cancel")

    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.DeletePayload)])
    async def delete_credit_memo(self, info: Info, id: strawberry.ID) -> p.DeletePayload:
        async def answer(pk: int) -> p.DeletePayload:
            return p.DeletePayload(deleted_id=strawberry.ID(encode("CreditMemo", pk)))

        return await mutate(
            info,
            lambda: svc.delete_credit_memo(ctx(info).db, ref=_memo_ref(id)),
            answer,
            lambda errors: p.DeletePayload(user_errors=errors),
        )

    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.DebitMemoPayload)])
    async def post_debit_memo(self, info: Info, id: strawberry.ID) -> p.DebitMemoPayload:
        return await mutate(
            info,
            lambda: svc.post_receivable(ctx(info).db, kind="DEBIT_MEMO", ref=ref(id, "DebitMemo")),
            lambda pk: by_ref_payload(info, "DebitMemo", pk, p.DebitMemoPayload, "debit_memo"),
            lambda errors: p.DebitMemoPayload(user_errors=errors),
        )

    @strawberry.mutation(extensions=[Requires("document.manage", payload=p.InvoicePayload)])
    async def post_invoice(self, info: Info, id: strawberry.ID) -> p.InvoicePayload:
        return await mutate(
            info,
            lambda: svc.post_receivable(ctx(info).db, kind="INVOICE", ref=ref(id, "Invoice")),
            lambda pk: by_ref_payload(info, "Invoice", pk, p.InvoicePayload, "invoice"),
            lambda errors: p.InvoicePayload(user_errors=errors),
        )

    update_credit_memo = strawberry.mutation(
        memo_edits.update_credit_memo,
        description="Header fields while DRAFT or POSTED; memo date and items only while DRAFT.",
        extensions=[Requires("document.manage", payload=p.CreditMemoPayload)],
    )
    bulk_create_credit_memos = strawberry.mutation(
        memo_edits.bulk_create_credit_memos,
        description="Up to limits.memosPerBulkRequest memos, each in its own transaction.",
        extensions=[Requires("document.manage", payload=p.BulkCreditMemosPayload)],
    )
    bulk_update_credit_memos = strawberry.mutation(
        memo_edits.bulk_update_credit_memos,
        description="Up to limits.memosPerBulkRequest memos, each in its own transaction.",
        extensions=[Requires("document.manage", payload=p.BulkCreditMemosPayload)],
    )
    create_taxation_items = strawberry.mutation(
        memo_edits.create_taxation_items,
        description="TAX items under CHARGE items of a DRAFT memo, each right after its parent.",
        extensions=[Requires("document.manage", payload=p.CreditMemoPayload)],
    )
    upload_credit_memo_file = strawberry.mutation(
        memo_files.upload_credit_memo_file,
        description="A file (GraphQL multipart request spec) attached to the memo; see CreditMemo.files.",
        extensions=[Requires("document.manage", payload=p.CreditMemoFilePayload)],
    )
    generate_credit_memo_pdfs = strawberry.mutation(
        memo_files.generate_credit_memo_pdfs,
        description="A job that renders each memo's PDF into its files; see CreditMemo.pdf. A refusal is "
        "a GraphQL error: extensions.code, extensions.field and every UserError in extensions.userErrors.",
        extensions=[Requires("document.manage")],
    )
    email_credit_memo = strawberry.mutation(
        memo_files.email_credit_memo,
        description="A job that emails the memo's PDF; recorded in CreditMemo.emails.",
        extensions=[Requires("document.manage", payload=p.JobPayload)],
    )
    apply_credit_memo = strawberry.mutation(
        settlement.apply_credit_memo,
        extensions=[Requires("credit_memo.apply", payload=p.CreditMemoSettlementPayload)],
    )
    unapply_credit_memo = strawberry.mutation(
        settlement.unapply_credit_memo,
        extensions=[Requires("credit_memo.unapply", payload=p.CreditMemoSettlementPayload)],
    )
    apply_credit_memo_async = strawberry.mutation(
        settlement.apply_credit_memo_async, extensions=[Requires("credit_memo.apply", payload=p.JobPayload)]
    )
    unapply_credit_memo_async = strawberry.mutation(
        settlement.unapply_credit_memo_async,
        extensions=[Requires("credit_memo.unapply", payload=p.JobPayload)],
    )
    reverse_credit_memo = strawberry.mutation(
        settlement.reverse_credit_memo,
        extensions=[Requires("credit_memo.reverse", payload=p.ReverseCreditMemoPayload)],
    )
    write_off_credit_memo = strawberry.mutation(
        settlement.write_off_credit_memo,
        extensions=[Requires("credit_memo.write_off", payload=p.WriteOffCreditMemoPayload)],
    )
    refund_credit_memo = strawberry.mutation(
        settlement.refund_credit_memo,
        extensions=[Requires("credit_memo.refund", payload=p.CreditMemoSettlementPayload)],
    )
    apply_payment = strawberry.mutation(
        settlement.apply_payment, extensions=[Requires("payment.apply", payload=p.PaymentSettlementPayload)]
    )
    unapply_payment = strawberry.mutation(
        settlement.unapply_payment,
        extensions=[Requires("payment.unapply", payload=p.PaymentSettlementPayload)],
    )


async def by_ref_payload(info: Info, type_name: str, pk: int, payload: type, field: str):
    node = await by_ref(info, type_name, encode(type_name, pk), None)
    return payload(**{field: node})


async def _memo_transition(info: Info, raw: str, action: str) -> p.CreditMemoPayload:
    return await mutate(
        info,
        lambda: svc.transition_credit_memo(
            ctx(info).db, ref=_memo_ref(raw), action=action, actor=actor(info)
        ),
        lambda pk: by_ref_payload(info, "CreditMemo", pk, p.CreditMemoPayload, "credit_memo"),
        lambda errors: p.CreditMemoPayload(user_errors=errors),
    )
