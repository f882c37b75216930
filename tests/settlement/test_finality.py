"""A reversal and a write-off are final: the pure rule."""

from __future__ import annotations

from gateway.settlement.finality import refusals


def test_a_reversed_memo_refuses_every_operation_at_its_id() -> None:
    for operation in ("applied", "unapplied", "refunded"):
        (v,) = refusals("CREDIT_MEMO", 7, "CM7", reversed=True, operation=operation, targets=[(("x",), 7)])
        assert (v.code, v.field, v.data["status"]) == ("INVALID_STATUS", ("creditMemoId",), "REVERSED")
        assert operation in v.message


def test_unapplying_from_the_memos_own_write_off_debit_memo_is_refused() -> None:
    targets = [(("debitMemos", "0"), 7), (("debitMemos", "1"), None), (("debitMemos", "2"), 8)]
    found = refusals("CREDIT_MEMO", 7, "CM7", reversed=False, operation="unapplied", targets=targets)
    assert [(v.code, v.field) for v in found] == [("INVALID_STATUS", ("debitMemos", "0"))]
    # The whole unapply (no target named) names the memo.
    (whole,) = refusals("CREDIT_MEMO", 7, "CM7", reversed=False, operation="unapplied", targets=[((), 7)])
    assert whole.field == ("creditMemoId",)
    # Applying is not undoing; a payment 7 is not credit memo 7.
    assert refusals("CREDIT_MEMO", 7, "CM7", reversed=False, operation="applied", targets=targets) == []
    assert refusals("PAYMENT", 7, "P7", reversed=False, operation="unapplied", targets=targets) == []
