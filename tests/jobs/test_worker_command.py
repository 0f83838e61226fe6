"""`engage worker`'s Dramatiq command line and worker carry the settings they are sized by."""

from __future__ import annotations

import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.cli import make_argument_parser

from app.settings import Settings
from jobs.worker import PollTimeout, worker_arguments


def test_the_worker_command_line_carries_sizing_and_shutdown() -> None:
    settings = Settings(worker_shutdown_timeout_seconds=7)
    parsed = make_argument_parser().parse_args(worker_arguments(settings, 3, 5))
    assert parsed.broker == "jobs.worker:setup"
    assert (parsed.processes, parsed.threads) == (3, 5)
    assert parsed.worker_shutdown_timeout == 7000


def test_the_consumers_poll_an_idle_queue_at_most_the_configured_interval_apart() -> None:
    broker = StubBroker()
    broker.add_middleware(PollTimeout(40))
    broker.declare_queue("orders")
    worker = Worker(broker, worker_threads=1)  # as Dramatiq's CLI builds it: the 1 s default
    worker.start()
    try:
        timeouts = {name: c.worker_timeout for name, c in worker.consumers.items()}
        assert timeouts == {"orders": 40, "orders.DQ": 40}
    finally:
        worker.stop()


def test_the_default_poll_timeout_is_a_tenth_of_a_second() -> None:
    assert Settings().worker_poll_timeout_ms == 100


@pytest.mark.parametrize("value", [0, 9, 60_001])
def test_a_poll_timeout_out_of_range_is_refused_naming_the_setting(value: int) -> None:
    with pytest.raises(ValueError, match="worker_poll_timeout_ms"):
        Settings(worker_poll_timeout_ms=value)
