"""MockBox tests; fixtures live in conftest.py."""
