import pytest

from tests.integration.harness import Server


@pytest.fixture
def server():
    srv = Server(workers=3)
    yield srv
    srv.stop()
