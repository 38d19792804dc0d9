"""Killing what is left of a browser that did not quit: the whole tree, and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from worker.whatsapp.browser import kill_tree, process_tree


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return False


def test_a_stopped_tree_is_killed_to_the_last_grandchild():
    parent = subprocess.Popen(["sh", "-c", "sleep 60 & sh -c 'sleep 60 & wait' & wait"])
    try:
        deadline = time.monotonic() + 5
        while len(process_tree(parent.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        tree = process_tree(parent.pid)
        assert len(tree) == 4 and tree[0][0] == parent.pid  # sh, its sleep, sh, its sleep
        for pid, _ in tree:
            os.kill(pid, signal.SIGSTOP)  # frozen, as a hung browser: deaf to SIGTERM
        assert kill_tree(tree) == 4
        parent.wait(5)
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid, _ in tree) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(alive(pid) for pid, _ in tree)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_pid_given_to_another_process_since_is_left_alone():
    other = subprocess.Popen(["sleep", "60"])
    try:
        ((pid, started),) = process_tree(other.pid)
        assert kill_tree([(pid, started + 1)]) == 0  # same pid, another start time
        assert other.poll() is None
        assert kill_tree([(pid, started)]) == 1
        assert other.wait(5) == -signal.SIGKILL
    finally:
        if other.poll() is None:
            other.kill()


def test_a_tree_already_gone_is_nothing_to_kill():
    gone = subprocess.Popen(["true"])
    tree = process_tree(gone.pid)
    gone.wait(5)
    assert kill_tree(tree) == 0
    assert process_tree(gone.pid) == []
