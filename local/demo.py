"""`make demo`: the system, locally, against the Talonic emulator on 127.0.0.1.

This first version walks the Talonic client through a validation run's life; it grows into the whole story
(signal → workflow → alert → cleanup) as the local stack does.
"""

from __future__ import annotations

import sys

from local.talonic_emulator import FakeClock, RunBehaviour, TalonicEmulator
from talonic_watchdog.api_keys import StaticKeySource
from talonic_watchdog.client import TalonicClient
from talonic_watchdog.polling import PollPolicy

READ_KEY = "tlnc_test_demo_read_0000000000"
WRITE_KEY = "tlnc_test_demo_write_000000000"
GOLDEN_SAMPLE = "6f0c4c1e-0b7c-4b0e-9c57-2f6d3f0d8a11"


def main() -> int:
    clock = FakeClock(1_796_385_600.0)
    with TalonicEmulator(clock=clock) as emulator:
        emulator.add_key(READ_KEY, scopes={"read"}, alias="read")
        emulator.add_key(WRITE_KEY, scopes={"read", "write"}, alias="write")
        emulator.default_behaviour = RunBehaviour(pending_seconds=20, running_seconds=100, accuracy=0.84)
        writer = TalonicClient(emulator.url, StaticKeySource(WRITE_KEY), now=clock)
        reader = TalonicClient(emulator.url, StaticKeySource(READ_KEY), now=clock)
        print(f"Talonic emulator on {emulator.url}")
        run = writer.create_run(golden_sample_id=GOLDEN_SAMPLE, name="demo run")
        print(f"created validation run {run.id} ({run.status})")
        policy, started = PollPolicy(), clock()
        while not run.status.is_final:
            wait = policy.next_wait(elapsed_seconds=clock() - started, seconds_to_deadline=3600)
            clock.advance(wait)
            run = reader.get_run(run.id)
            print(f"  t+{clock() - started:5.0f} s  status={run.status:<9} after waiting {wait:3d} s")
        print(f"run {run.status} with accuracy {run.accuracy}; {reader.requests_sent} polls")
        results = reader.get_results(run.id)
        print(f"{len(results)} per-field results fetched")
        writer.delete_run(run.id)
        print(f"run deleted; the emulator served {len(emulator.requests)} requests")
        return 0 if run.accuracy is not None else 1


if __name__ == "__main__":
    sys.exit(main())
