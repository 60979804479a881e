"""Fixtures shared by several test files."""
import pytest


@pytest.fixture(scope="session")
def rehearsal_env(tmp_path_factory):
    """(workdir, environment) of one prepared rehearsal (tools.rehearsal.prepare): the fakes,
    the CIFAR-10 link and the kernels' startup file, written once per test session."""
    from tools import rehearsal

    workdir = tmp_path_factory.mktemp("rehearsal")
    return workdir, rehearsal.prepare(workdir)
