"""The embedded system: the stack from template.yaml on moto and the Talonic emulator, on one virtual clock.

`make demo` and the integration tests both start from here, so they run the same wiring.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from local.stack import LocalStack, VirtualClock
from local.talonic_emulator import TalonicEmulator

REPO = Path(__file__).resolve().parents[1]


@dataclass
class EmbeddedSystem:
    stack: LocalStack
    emulator: TalonicEmulator
    clock: VirtualClock


@contextmanager
def embedded_system(*, read_key: str, write_key: str, start: float, **parameters: str) -> Iterator[EmbeddedSystem]:
    """Emulator (a read key and a read+write key) and stack (`parameters` override the template's defaults),
    with the two keys put into the stack's secrets."""
    clock = VirtualClock(start)
    with TalonicEmulator(clock=clock) as emulator:
        emulator.add_key(read_key, scopes={"read"}, alias="read")
        emulator.add_key(write_key, scopes={"read", "write"}, alias="write")
        stack = LocalStack(
            template_path=str(REPO / "template.yaml"),
            parameters={"TalonicApiUrl": emulator.url, **parameters},
            clock=clock,
        )
        with stack:
            stack.put_secret("ReadKeySecret", read_key)
            stack.put_secret("WriteKeySecret", json.dumps({"api_key": write_key}))
            yield EmbeddedSystem(stack=stack, emulator=emulator, clock=clock)
