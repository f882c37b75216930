"""Property tests for the invariants of SPEC.md: money is conserved, nothing is over-applied, and
unapplying what was applied restores every balance exactly."""

from collections import Counter
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from settlement_factories import apply, invoice, memo, mitem, parts_of, payment, request, titem, unapply

from gateway.settlement.model import ApplyRequest

KINDS = ["CHARGE", "DISCOUNT", "TAX"]


@st.composite
def scenarios(draw):
    is_payment = draw(st.booleans())
    memo_amounts = draw(st.lists(st.integers(0, 50_000), min_size=1, max_size=6))
    if is_payment:
        source = payment(sum(memo_amounts) + 1)
    else:
        source = memo(
            *(
                mitem(
                    i + 1,
                    a,
                    draw(st.sampled_from(KINDS)),
                    unapplied=draw(st.integers(0, a)),
                    seq=draw(st.integers(0, 9)),
                )
                for i, a in enumerate(memo_amounts)
            )
        )
    docs, targets, budget = [], [], source.unapplied
    for t in range(draw(st.integers(1, 4))):
        items = []
        for k in range(draw(st.integers(1, 6))):
            amount = draw(st.integers(1, 30_000))
            kind = draw(st.sampled_from(KINDS)) if k else "CHARGE"
            parent = (t + 1) * 100 if kind == "TAX" else None
            items.append(
                titem((t + 1) * 100 + k, amount, kind, parent=parent, balance=draw(st.integers(0, amount)))
            )
        doc = invoice(t + 1, *items)
        docs.append(doc)
        if min(doc.balance, budget) >= 1:
            amount = draw(st.integers(1, min(doc.balance, budget)))
            budget -= amount
            targets.append((doc, str(Decimal(amount).scaleb(-2))))
    rule = draw(st.sampled_from(["FIFO", "PRORATION"]))
    guard = draw(st.sampled_from([0, 10, 10_000]))
    return source, docs, targets, rule, guard


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_movements_conserve_money_and_never_over_apply(scenario):
    source, docs, targets, rule, guard = scenario
    if not targets:
        return
    req = request(*targets, rule=rule)
    done = apply(source, docs, req, guard=guard)
    wanted = sum(int(Decimal(a).scaleb(2)) for _, a in targets)
    assert done.amount == wanted == sum(m.amount for m in done.movements)
    assert all(m.amount > 0 for m in done.movements)
    # one movement per (source item, target item): the writes insert one item part for each
    pairs = [(m.source_item_id, m.target_id, m.target_item_id) for m in done.movements]
    assert len(pairs) == len(set(pairs))
    per_target = done.by_target()
    assert {d.id: per_target.get(d.id, 0) for d, _ in targets} == {
        d.id: int(Decimal(a).scaleb(2)) for d, a in targets
    }
    given_by = Counter()
    received_by = Counter()
    for m in done.movements:
        given_by[m.source_item_id] += m.amount
        received_by[m.target_item_id] += m.amount
    for it in source.items:
        assert given_by[it.id] <= it.unapplied
    for doc in docs:
        for it in doc.items:
            new_balance = it.balance - received_by[it.id]
            assert 0 <= new_balance <= it.amount

    # Unapplying what was applied restores every balance exactly.
    back = unapply(source, docs, parts_of(done), ApplyRequest())
    assert Counter({(m.source_item_id, m.target_item_id): m.amount for m in back.movements}) == (
        Counter({(m.source_item_id, m.target_item_id): m.amount for m in done.movements})
    )

    # A partial unapply by rule takes back exactly what is asked, never more than a part holds.
    half = [(d, str(Decimal(int(Decimal(a).scaleb(2)) // 2 or 1).scaleb(-2))) for d, a in targets]
    partial = unapply(source, docs, parts_of(done), request(*half, rule=rule), guard=guard)
    held = Counter()
    for m in done.movements:
        held[(m.source_item_id, m.target_item_id)] += m.amount
    for m in partial.movements:
        assert 0 < m.amount <= held[(m.source_item_id, m.target_item_id)]
    assert partial.amount == sum(int(Decimal(a).scaleb(2)) for _, a in half)
