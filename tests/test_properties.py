"""Stateful property test: random sequences of document and settlement operations, with SPEC.md's
invariants checked after every step, refused operations proven to write nothing, and an apply
followed by the matching unapply proven to restore every balance exactly."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode, ref
from gateway.services import documents as docs
from gateway.services import settlement as svc
from gateway.settlement import errors as e
from gateway.settlement.money import from_minor
from tests import factories as f
from tests.invariants import assert_invariants, balances

TEMPLATE: Path | None = None
CURRENCIES = ("USD", "JPY")


def _template() -> Path:
    global TEMPLATE
    if TEMPLATE is None:
        from gateway.migrate import upgrade

        TEMPLATE = Path(tempfile.mkdtemp()) / "template.db"
        upgrade(Settings(database_url=f"sqlite+aiosqlite:///{TEMPLATE}"))
    return TEMPLATE


minor = st.integers(min_value=1, max_value=5_000)
share = st.one_of(st.integers(1, 100), st.just(150))  # percent of what is open; 150 asks too much
mostly = st.sampled_from([True, True, True, False])
rules = st.sampled_from([None, "FIFO", "PRORATION"])


class Settlement(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp())
        shutil.copy(_template(), self.dir / "db.sqlite")
        self.settings = Settings(database_url=f"sqlite+aiosqlite:///{self.dir / 'db.sqlite'}", workers=0)
        self.db = Database(self.settings)
        self.accounts: list[tuple[int, str]] = []
        self.invoices: list[tuple[int, int]] = []  # (pk, account index)
        self.memos: list[tuple[int, int]] = []
        self.payments: list[tuple[int, int]] = []

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def attempt(self, coro) -> bool:  # type: ignore[no-untyped-def]
        """Run an operation; a refusal must leave every amount as it was."""
        name = getattr(coro, "__qualname__", "operation")
        before = self.run(balances(self.db))
        try:
            self.run(coro)
            event(f"{name}: done")
            return True
        except e.Rejected as exc:
            assert self.run(balances(self.db)) == before, "a refused operation wrote something"
            event(f"{name}: refused")
            event(f"refused with {sorted({v.code.value for v in exc.errors})}")
            return False

    def money(self, account: int, amount: int) -> Decimal:
        return from_minor(amount, self.accounts[account][1])

    @initialize()
    def accounts_in_two_currencies(self) -> None:
        """Each account starts with a posted invoice (tax included), memo and payment, so that
        settlement is possible from the first step."""
        for n, currency in enumerate(CURRENCIES):
            acct = self.run(f.account(self.db, currency))
            self.accounts.append((acct, currency))
            amount = str(self.money(n, 2_000))
            self.invoices.append(
                (
                    self.run(
                        f.invoice(self.db, acct, f.item(amount, tax=str(self.money(n, 200))), f.item(amount))
                    ),
                    n,
                )
            )
            self.memos.append((self.run(f.credit_memo(self.db, acct, f.item(amount), f.item(amount))), n))
            self.payments.append((self.run(f.payment(self.db, acct, amount)), n))

    @rule(
        account=st.integers(0, 1),
        amounts=st.lists(st.tuples(minor, st.booleans()), min_size=1, max_size=4),
        post=mostly,
    )
    def create_invoice(self, account: int, amounts: list[tuple[int, bool]], post: bool) -> None:
        items = [
            f.item(
                str(self.money(account, a)), tax=str(self.money(account, max(1, a // 10))) if taxed else None
            )
            for a, taxed in amounts
        ]
        pk = self.run(f.invoice(self.db, self.accounts[account][0], *items, post=post))
        self.invoices.append((pk, account))

    @rule(account=st.integers(0, 1), amounts=st.lists(minor, min_size=1, max_size=4), post=mostly)
    def create_memo(self, account: int, amounts: list[int], post: bool) -> None:
        items = [f.item(str(self.money(account, a))) for a in amounts]
        pk = self.run(f.credit_memo(self.db, self.accounts[account][0], *items, post=post))
        self.memos.append((pk, account))

    @rule(account=st.integers(0, 1), amount=minor)
    def create_payment(self, account: int, amount: int) -> None:
        pk = self.run(f.payment(self.db, self.accounts[account][0], str(self.money(account, amount))))
        self.payments.append((pk, account))

    @precondition(lambda self: self.memos)
    @rule(data=st.data(), action=st.sampled_from(["post", "unpost", "cancel"]))
    def lifecycle(self, data: st.DataObject, action: str) -> None:
        pk, _ = data.draw(st.sampled_from(self.memos))
        self.attempt(
            docs.transition_credit_memo(
                self.db, ref=ref(encode("CreditMemo", pk), "CreditMemo"), action=action
            )
        )

    def open_amount(self, table: str, pk: int) -> int:
        async def read() -> int:
            from sqlalchemy import select

            from gateway import store as s

            t = s.credit_memo_t if table == "memo" else s.payment_t if table == "payment" else s.receivable_t
            column = t.c.balance if table == "receivable" else t.c.unapplied_amount
            async with self.db.connect() as conn:
                row = (await conn.execute(select(column, t.c.status).where(t.c.id == pk))).one()
            return int(row[0]) if row[1] == "POSTED" else 0  # only a POSTED document has anything open

        return self.run(read())

    def amount_for(self, source: str, source_pk: int, invoices: list[int], pct: int, count: int = 1) -> int:
        room = min(
            [
                self.open_amount(source, source_pk) // count,
                *(self.open_amount("receivable", i) for i in invoices),
            ]
        )
        return max(1, room * pct // 100)

    def same_account(self, data: st.DataObject, acct: int, k: int = 1) -> list[int]:
        mine = [pk for pk, a in self.invoices if a == acct] or [pk for pk, _ in self.invoices]
        return data.draw(st.lists(st.sampled_from(mine), min_size=1, max_size=k, unique=True))

    @precondition(lambda self: self.memos and self.invoices)
    @rule(data=st.data(), pct=share, rule_=rules)
    def apply(self, data: st.DataObject, pct: int, rule_: str | None) -> None:
        memo, acct = data.draw(st.sampled_from(self.memos))
        targets = self.same_account(data, acct, 2)
        amount = self.amount_for("memo", memo, targets, pct, len(targets))
        self.attempt(
            f.settle(
                self.db,
                self.settings,
                memo,
                [(pk, str(self.money(acct, amount))) for pk in targets],
                rule=rule_,
            )
        )

    @precondition(lambda self: self.memos and self.invoices)
    @rule(data=st.data(), pct=st.integers(1, 100), rule_=rules)
    def apply_within_what_is_open(self, data: st.DataObject, pct: int, rule_: str | None) -> None:
        posted = [m for m in self.memos if self.open_amount("memo", m[0]) > 0] or self.memos
        memo, acct = data.draw(st.sampled_from(posted))
        open_invoices = [
            pk for pk, a in self.invoices if a == acct and self.open_amount("receivable", pk) > 0
        ]
        inv = data.draw(st.sampled_from(open_invoices)) if open_invoices else self.same_account(data, acct)[0]
        amount = self.amount_for("memo", memo, [inv], pct)
        self.attempt(
            f.settle(self.db, self.settings, memo, [(inv, str(self.money(acct, amount)))], rule=rule_)
        )

    def applied_amount(self, memo: int) -> int:
        async def read() -> int:
            from sqlalchemy import select

            from gateway import store as s

            async with self.db.connect() as conn:
                return int(
                    await conn.scalar(
                        select(s.credit_memo_t.c.applied_amount).where(s.credit_memo_t.c.id == memo)
                    )
                )

        return self.run(read())

    @precondition(lambda self: self.memos and self.invoices)
    @rule(data=st.data(), pct=share, rule_=rules, back_rule=rules)
    def apply_then_unapply_restores(
        self, data: st.DataObject, pct: int, rule_: str | None, back_rule: str | None
    ) -> None:
        """Invariant 5: unapplying what was applied restores every balance exactly. (An amount
        unapplied after several applies is spread back over all of them, so the memo starts with
        nothing applied here.)"""
        fresh = [m for m in self.memos if self.applied_amount(m[0]) == 0]
        if not fresh:
            return
        memo, acct = data.draw(st.sampled_from(fresh))
        (inv,) = self.same_account(data, acct)
        before = self.run(balances(self.db))
        value = str(self.money(acct, self.amount_for("memo", memo, [inv], pct)))
        if self.attempt(f.settle(self.db, self.settings, memo, [(inv, value)], rule=rule_)):
            self.run(f.settle(self.db, self.settings, memo, [(inv, value)], unapply=True, rule=back_rule))
            assert self.run(balances(self.db)) == before

    @precondition(lambda self: self.memos)
    @rule(data=st.data(), everything=st.booleans(), amount=minor)
    def unapply(self, data: st.DataObject, everything: bool, amount: int) -> None:
        memo, acct = data.draw(st.sampled_from(self.memos))
        if everything or not self.invoices:
            self.attempt(f.settle(self.db, self.settings, memo, [], unapply=True, everything=True))
        else:
            inv, _ = data.draw(st.sampled_from(self.invoices))
            self.attempt(
                f.settle(self.db, self.settings, memo, [(inv, str(self.money(acct, amount)))], unapply=True)
            )

    @precondition(lambda self: self.memos)
    @rule(data=st.data(), write_off=st.booleans())
    def reverse_or_write_off(self, data: st.DataObject, write_off: bool) -> None:
        memo, _ = data.draw(st.sampled_from(self.memos))
        self.attempt(
            svc.reverse_or_write_off(
                self.db,
                self.settings,
                memo=ref(encode("CreditMemo", memo), "CreditMemo"),
                write_off=write_off,
                memo_date=None,
            )
        )

    @precondition(lambda self: self.memos)
    @rule(data=st.data(), amount=minor)
    def refund(self, data: st.DataObject, amount: int) -> None:
        memo, acct = data.draw(st.sampled_from(self.memos))
        self.attempt(
            svc.refund(
                self.db,
                self.settings,
                memo=ref(encode("CreditMemo", memo), "CreditMemo"),
                amount=self.money(acct, amount),
                refund_date=None,
            )
        )

    @precondition(lambda self: self.payments and self.invoices)
    @rule(data=st.data(), pct=share, unapply=st.booleans())
    def settle_payment(self, data: st.DataObject, pct: int, unapply: bool) -> None:
        pay, acct = data.draw(st.sampled_from(self.payments))
        (inv,) = self.same_account(data, acct)
        if unapply:
            self.attempt(
                f.settle(self.db, self.settings, pay, [], kind="PAYMENT", unapply=True, everything=True)
            )
            return
        amount = self.amount_for("payment", pay, [inv], pct)
        self.attempt(
            f.settle(self.db, self.settings, pay, [(inv, str(self.money(acct, amount)))], kind="PAYMENT")
        )

    @invariant()
    def spec_invariants_hold(self) -> None:
        if self.accounts:
            self.run(assert_invariants(self.db))


# max_examples comes from the profile loaded in conftest: 200 in CI, 50 on a developer's machine.
Settlement.TestCase.settings = settings(
    settings(),
    stateful_step_count=12,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    deadline=None,
)
TestSettlementProperties = Settlement.TestCase
