"""The settlement rules: pure, synchronous, standard library only.

Nothing in this package imports from the rest of the project or from outside the standard library;
``tests/settlement/test_purity.py`` walks the imports and fails otherwise.
"""
