from polyformers.testing.equivalence import generate_equivalence_cases
from polyformers.testing.parity import generate_parity_cases


def pytest_generate_tests(metafunc):
    generate_parity_cases(metafunc)  # ParityTesterMixin's (class, config variant) cases
    generate_equivalence_cases(metafunc)  # CrossFrameworkEquivalenceMixin's (class, framework) cases
