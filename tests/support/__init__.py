"""What the tests share: harnesses, sample data and real clients, imported by test modules.

Test modules import from here (and from tests.conftest), never from each other, so each
test module can change or go without breaking another (tests/test_layers_tests.py checks).
"""
