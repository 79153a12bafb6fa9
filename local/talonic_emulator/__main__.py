"""Run the emulator on its own for a local demo: ``python -m local.talonic_emulator``.

Serves until interrupted, with one API key holding the read and write scopes. Runs created by POST
follow the default behaviour (pending for 2 s, running for 8 s, then completed), so a watchdog
pointed at it sees a realistic lifecycle in real time.
"""

from __future__ import annotations

import argparse
import sys
import threading

from local.talonic_emulator.emulator import VALID_SCOPES, TalonicEmulator
from local.talonic_emulator.routing import alias_for

DEMO_KEY = "tlnc_test_local_demo_key"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local emulator of Talonic's validation-run API.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (0 picks a free one; default 8787)")
    parser.add_argument("--key", default=DEMO_KEY, help=f"API key to accept (default {DEMO_KEY})")
    parser.add_argument("--org", default="org_default", help="organization of the key")
    parser.add_argument("--scopes", default="read,write", help="comma-separated scopes of the key (default read,write)")
    args = parser.parse_args(argv)
    scopes = {scope.strip() for scope in args.scopes.split(",") if scope.strip()}
    if not scopes <= VALID_SCOPES:
        parser.error(f"scopes must be among {sorted(VALID_SCOPES)}")

    emulator = TalonicEmulator(host=args.host, port=args.port)
    emulator.add_key(args.key, scopes, org=args.org)
    emulator.start()
    # Never print a key, even a demo one: the alias shows its last four characters only.
    sys.stdout.write(f"Talonic emulator listening on {emulator.url} (key alias {alias_for(args.key)})\n")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
