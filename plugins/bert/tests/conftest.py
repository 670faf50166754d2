import pytest


def pytest_generate_tests(metafunc):
    """Parametrize ``parity_case`` from the test class's parity_classes x parity_variants."""
    if "parity_case" in metafunc.fixturenames:
        from polyformers.testing.parity import parity_cases

        cls = metafunc.cls
        cases = parity_cases(cls.parity_classes, cls.parity_variants)
        metafunc.parametrize("parity_case", cases, ids=[f"{c}-{v}" for c, v in cases])


def transformers_major() -> int:
    try:
        import transformers
    except ImportError:
        return 0
    return int(transformers.__version__.split(".")[0])


@pytest.fixture
def transformers_v5():
    if transformers_major() < 5:
        pytest.skip("needs Transformers 5.x as the oracle")
