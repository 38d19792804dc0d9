"""The pool chaos run (tests/chaos_pool.py, issue 15) at its --quick size, in `make test`:
three WhatsApp accounts and two SMS phones share one job on PostgreSQL while workers are
killed, the database is restarted and an account is logged out. `make chaos` runs it full.

Each run draws its fault moments from a fresh seed; a failure names it and the command that
replays the plan.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.chaos import run_scenario
from tests.pg_server import NoPostgres

SEED = random.SystemRandom().randrange(10**6)


@pytest.mark.browser
def test_a_pool_of_senders_on_postgres_sends_each_message_once_by_its_own_sender(
    chromium, tmp_path
):
    try:
        result = run_scenario("pool-postgres", tmp_path, SEED, quick=True)
    except NoPostgres as exc:  # no server of our own can be started here
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(exc))
    print(result.line())
    assert result.ok, "\n".join(
        [
            result.line(),
            *result.problems[:20],
            f"replay: python -m tests.chaos --quick --seed {SEED} --scenario pool-postgres",
            f"logs: {tmp_path}",
        ]
    )
