import pytest

from tests.integration.harness import Server


@pytest.fixture(autouse=True, scope="session")
def no_server_outlives_the_tests():
    """A test that fails before its own cleanup must not leave a server running."""
    yield
    for server in Server.started:
        if server.proc.poll() is None:
            server.stop()


@pytest.fixture
def server():
    srv = Server(workers=3)
    yield srv
    srv.stop()
