"""The pure rate limiter (dashboard/limiter.py), driven by plain numbers for time."""

from __future__ import annotations

from dashboard.limiter import Limiter


def test_a_client_gets_free_tries_then_a_doubling_wait() -> None:
    limiter = Limiter(free=3, base_s=1.0, max_s=8.0, global_per_window=1000)
    now = 100.0
    for _ in range(3):
        assert limiter.wait_s("a", now) == 0
        limiter.failed("a", now)
    assert limiter.wait_s("a", now) == 0  # the third failure still costs no wait
    waits = []
    for _ in range(6):
        limiter.failed("a", now)
        waits.append(limiter.wait_s("a", now))
        now += waits[-1]
        assert limiter.wait_s("a", now) == 0
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert limiter.wait_s("b", now) == 0  # another client is not held up


def test_a_success_clears_the_client() -> None:
    limiter = Limiter(free=1, base_s=5.0, global_per_window=1000)
    limiter.failed("a", 0.0)
    limiter.failed("a", 0.0)
    assert limiter.wait_s("a", 1.0) == 4.0
    limiter.succeeded("a")
    assert limiter.wait_s("a", 1.0) == 0
    limiter.failed("a", 1.0)
    assert limiter.wait_s("a", 1.0) == 0


def test_many_clients_together_hit_the_global_limit() -> None:
    limiter = Limiter(free=100, global_per_window=10, window_s=60.0)
    for k in range(10):
        limiter.failed(f"client{k}", 10.0 + k)
    assert limiter.wait_s("newcomer", 20.0) == 50.0  # until the first failure leaves
    assert limiter.wait_s("newcomer", 70.0) == 0


def test_the_table_of_clients_is_bounded() -> None:
    limiter = Limiter(free=0, max_clients=100, global_per_window=10**9)
    for k in range(10_000):
        limiter.failed(f"c{k}", 0.0)
    assert len(limiter._clients) == 100
    assert limiter.wait_s("c9999", 0.0) > 0
