"""Assets in the ``training`` pool for tests that kill a run holding the pool's slot.

``python -m tests.support.pool_holder`` materialises ``holder`` in the instance of
``DAGSTER_HOME``: a real in-process Dagster run that claims the slot and keeps it for ten minutes,
until the test kills it.
"""

from __future__ import annotations

import time

import dagster as dg

POOL = "training"


@dg.asset(pool=POOL)
def holder() -> int:
    """Takes the pool's slot and keeps it."""
    time.sleep(600)
    return 1


@dg.asset(pool=POOL)
def follower() -> int:
    """Needs the pool's slot for a moment."""
    return 1


if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        dg.materialize([holder], instance=instance)
