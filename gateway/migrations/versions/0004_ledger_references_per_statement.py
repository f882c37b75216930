"""PostgreSQL: the ledger's references are checked once per statement, not once per row

Revision ID: 0004
Revises: 0003

An apply at TOTAL_ITEMS writes ~10,000 application lines and as many item parts. PostgreSQL checks
a foreign key with one query per row and key (seven per line and item part), which was three
quarters of the time of those inserts. Here, on PostgreSQL only, the seven foreign keys of
``application_line`` and ``item_part`` become triggers that check a whole statement's rows with one
query, with the same guarantees:

- an inserted row's references must exist, and each referenced row is locked ``FOR KEY SHARE``,
  the lock a foreign key takes, so no other transaction deletes it before this one commits;
- a line's target item must belong to its target (stronger than the two separate keys were);
- a referenced row is not deleted (statement-level triggers on the parents; under READ COMMITTED,
  which the gateway's writes use, each check sees every committed row), and a parent is not
  truncated while a row of the ledger refers to it (truncating both in one command is fine);
- a reference, once written, is not changed, and neither is a referenced row's id.

Every violation raises SQLSTATE 23503 (foreign_key_violation), as the foreign keys did. SQLite
keeps its foreign keys: they are checked in C, and an apply at TOTAL_ITEMS takes 0.2 s there.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (child table, column, parent table): the foreign keys this migration replaces on PostgreSQL
REPLACED = (
    ("application_line", "application_id", "application"),
    ("application_line", "credit_memo_item_id", "credit_memo_item"),
    ("application_line", "target_id", "receivable"),
    ("application_line", "target_item_id", "receivable_item"),
    ("item_part", "part_id", "part"),
    ("item_part", "credit_memo_item_id", "credit_memo_item"),
    ("item_part", "target_item_id", "receivable_item"),
)


def _missing(rows: str, columns: tuple[str, ...], parent: str, keys: tuple[str, ...] = ("id",)) -> str:
    """True when a distinct ``columns`` of ``rows`` (where any is not null) is not a row of
    ``parent``; the rows found are locked ``FOR KEY SHARE``, as a foreign key locks them.

    Each is looked up by ``parent``'s index: a ``LATERAL`` subquery that locks cannot become a
    join that scans ``parent``. That matters because plpgsql plans the check once per session, for
    the size of the first statement's rows: a hash join planned for 10,000 rows would scan the
    whole table for every later one-row insert."""
    wanted = f"SELECT DISTINCT {', '.join(columns)} FROM {rows} WHERE " + " OR ".join(
        f"{c} IS NOT NULL" for c in columns
    )
    match = " AND ".join(f"p.{k} = w.{c}" for k, c in zip(keys, columns, strict=True))
    return f"""(SELECT count(*) <> count(found.here) FROM ({wanted}) AS w
              LEFT JOIN LATERAL (SELECT true AS here FROM {parent} AS p WHERE {match}
                                 FOR KEY SHARE) AS found ON true)"""


LINE_CHECK = f"""
CREATE FUNCTION application_line_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {_missing("new_line", ("application_id",), "application")}
       OR {_missing("new_line", ("credit_memo_item_id",), "credit_memo_item")}
       -- the target item on its target: both or neither, one check for the two columns
       OR {_missing("new_line", ("target_item_id", "target_id"), "receivable_item", ("id", "receivable_id"))}
    THEN
        RAISE EXCEPTION 'a new application line refers to an application, a credit memo item or a '
                        'target item (on its target) that does not exist'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'application_line';
    END IF;
    RETURN NULL;
END $$"""

ITEM_PART_CHECK = f"""
CREATE FUNCTION item_part_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {_missing("new_item_part", ("part_id",), "part")}
       OR {_missing("new_item_part", ("credit_memo_item_id",), "credit_memo_item")}
       OR {_missing("new_item_part", ("target_item_id",), "receivable_item")}
    THEN
        RAISE EXCEPTION 'a new item part refers to a part, a credit memo item or a target item '
                        'that does not exist'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'item_part';
    END IF;
    RETURN NULL;
END $$"""

# TG_ARGV: pairs of (child table, column) that may refer to the deleted rows. A TRUNCATE has no
# rows to name: then no child may refer to any row (truncated together, they are empty by now).
STILL_REFERS = """
CREATE FUNCTION ledger_still_refers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    i integer := 0;
    referred boolean;
BEGIN
    WHILE i < TG_NARGS LOOP
        IF TG_OP = 'TRUNCATE' THEN
            EXECUTE format('SELECT EXISTS (SELECT FROM %I WHERE %I IS NOT NULL)',
                           TG_ARGV[i], TG_ARGV[i + 1]) INTO referred;
        ELSE
            EXECUTE format('SELECT EXISTS (SELECT FROM %I WHERE %I IN (SELECT id FROM gone))',
                           TG_ARGV[i], TG_ARGV[i + 1]) INTO referred;
        END IF;
        IF referred THEN
            RAISE EXCEPTION 'a deleted row of % is still referred to by %.%',
                            TG_TABLE_NAME, TG_ARGV[i], TG_ARGV[i + 1]
                USING ERRCODE = 'foreign_key_violation', TABLE = TG_ARGV[i];
        END IF;
        i := i + 2;
    END LOOP;
    RETURN NULL;
END $$"""

FIXED = """
CREATE FUNCTION ledger_reference_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a reference of % (or the id it refers to) is not changed once written',
                    TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
END $$"""

TRIGGERS = (
    """CREATE TRIGGER application_line_references AFTER INSERT ON application_line
    REFERENCING NEW TABLE AS new_line
    FOR EACH STATEMENT EXECUTE FUNCTION application_line_references()""",
    """CREATE TRIGGER item_part_references AFTER INSERT ON item_part
    REFERENCING NEW TABLE AS new_item_part
    FOR EACH STATEMENT EXECUTE FUNCTION item_part_references()""",
    """CREATE TRIGGER application_line_references_fixed
    BEFORE UPDATE OF application_id, credit_memo_item_id, target_id, target_item_id
    ON application_line FOR EACH ROW
    WHEN ((OLD.application_id, OLD.credit_memo_item_id, OLD.target_id, OLD.target_item_id)
          IS DISTINCT FROM
          (NEW.application_id, NEW.credit_memo_item_id, NEW.target_id, NEW.target_item_id))
    EXECUTE FUNCTION ledger_reference_fixed()""",
    """CREATE TRIGGER item_part_references_fixed
    BEFORE UPDATE OF part_id, credit_memo_item_id, target_item_id ON item_part FOR EACH ROW
    WHEN ((OLD.part_id, OLD.credit_memo_item_id, OLD.target_item_id)
          IS DISTINCT FROM (NEW.part_id, NEW.credit_memo_item_id, NEW.target_item_id))
    EXECUTE FUNCTION ledger_reference_fixed()""",
)

# parent table → the (child table, column) pairs that refer to it
PARENTS = {
    "application": ("application_line", "application_id"),
    "credit_memo_item": ("application_line", "credit_memo_item_id", "item_part", "credit_memo_item_id"),
    "receivable": ("application_line", "target_id"),
    "receivable_item": ("application_line", "target_item_id", "item_part", "target_item_id"),
    "part": ("item_part", "part_id"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for child, column, _ in REPLACED:
        op.drop_constraint(f"{child}_{column}_fkey", child, type_="foreignkey")
    for statement in (LINE_CHECK, ITEM_PART_CHECK, STILL_REFERS, FIXED, *TRIGGERS):
        op.execute(statement)
    for parent, children in PARENTS.items():
        arguments = ", ".join(f"'{name}'" for name in children)
        op.execute(
            f"CREATE TRIGGER {parent}_still_referred AFTER DELETE ON {parent}"
            " REFERENCING OLD TABLE AS gone"
            f" FOR EACH STATEMENT EXECUTE FUNCTION ledger_still_refers({arguments})"
        )
        op.execute(
            f"CREATE TRIGGER {parent}_truncated_while_referred AFTER TRUNCATE ON {parent}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION ledger_still_refers({arguments})"
        )
        op.execute(
            f"CREATE TRIGGER {parent}_id_fixed BEFORE UPDATE OF id ON {parent} FOR EACH ROW"
            " WHEN (OLD.id <> NEW.id) EXECUTE FUNCTION ledger_reference_fixed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for parent in PARENTS:
        op.execute(f"DROP TRIGGER {parent}_still_referred ON {parent}")
        op.execute(f"DROP TRIGGER {parent}_truncated_while_referred ON {parent}")
        op.execute(f"DROP TRIGGER {parent}_id_fixed ON {parent}")
    for table in ("application_line", "item_part"):
        op.execute(f"DROP TRIGGER {table}_references ON {table}")
        op.execute(f"DROP TRIGGER {table}_references_fixed ON {table}")
    for function in (
        "application_line_references",
        "item_part_references",
        "ledger_still_refers",
        "ledger_reference_fixed",
    ):
        op.execute(f"DROP FUNCTION {function}()")
    for child, column, parent in REPLACED:
        op.create_foreign_key(f"{child}_{column}_fkey", child, parent, [column], ["id"])
