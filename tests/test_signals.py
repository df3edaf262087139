"""GracefulStop: real signals delivered to this process."""

import os
import signal

import pytest

from training.signals import GracefulStop


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_first_signal_sets_the_flag_and_the_exit_code(signum, code):
    stop = GracefulStop().install()
    try:
        assert not stop.requested and stop.exit_code == 0
        os.kill(os.getpid(), signum)
        assert stop.requested and stop.exit_code == code
    finally:
        stop.restore()


def test_second_sigint_stops_at_once():
    stop = GracefulStop().install()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        stop.restore()


def test_restore_puts_back_the_previous_handlers():
    before = signal.getsignal(signal.SIGTERM)
    stop = GracefulStop().install()
    assert signal.getsignal(signal.SIGTERM) != before
    stop.restore()
    assert signal.getsignal(signal.SIGTERM) == before
