from ircproto.flood import FakeLag


def test_a_burst_then_a_steady_rate():
    lag = FakeLag(burst=3, rate=2, now=0.0)
    assert [lag.delay(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert lag.delay(0.0) == 0.5  # the fourth line waits for half a second's worth of tokens
    assert lag.delay(0.5) == 0.0
    assert lag.delay(0.5) == 0.5


def test_quiet_time_refills_the_burst_but_no_further():
    lag = FakeLag(burst=2, rate=10, now=0.0)
    lag.delay(0.0), lag.delay(0.0)
    assert [lag.delay(100.0) for _ in range(2)] == [0.0, 0.0]
    assert lag.delay(100.0) > 0


def test_steady_sending_at_the_rate_is_never_delayed():
    lag = FakeLag(burst=1, rate=4, now=0.0)
    assert all(lag.delay(i * 0.25) == 0.0 for i in range(100))
