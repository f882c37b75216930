"""Use cases: lock → load → rules → persist → commit. The only code that touches both the database
and the settlement rules."""
