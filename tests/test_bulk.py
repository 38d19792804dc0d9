"""The garbage collector pause around big requests: always undone, and never too early."""

import gc
import threading

import pytest

from utils.bulk import collector_paused


@pytest.fixture(autouse=True)
def _collector_on():
    gc.enable()
    yield
    gc.enable()


def test_the_collector_is_off_inside_and_on_again_after():
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_still_turns_the_collector_back_on():
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("bad upload")
    assert gc.isenabled()


def test_overlapping_requests_keep_it_off_until_the_last_one_leaves():
    first_in, second_in, first_out, second_may_leave = (threading.Event() for _ in range(4))
    seen = {}

    def first():
        with collector_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with collector_paused():
            second_in.set()
            first_out.wait(5)
            seen["after the first left"] = gc.isenabled()
            second_may_leave.wait(5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    first_out.wait(5)
    second_may_leave.set()
    for t in threads:
        t.join(5)
    assert seen == {"after the first left": False}
    assert gc.isenabled()


def test_a_collector_someone_turned_off_stays_off():
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_it_decorates_a_view_without_renaming_it():
    @collector_paused()
    def send():
        return gc.isenabled()

    assert send() is False and send.__name__ == "send"
    assert gc.isenabled()
