from polyformers.testing.parity import generate_parity_cases


def pytest_generate_tests(metafunc):
    generate_parity_cases(metafunc)  # ParityTesterMixin's (class, config variant) cases
