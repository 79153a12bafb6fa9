"""Benchmark 1 (issue 7): what polling costs, for runs of 1, 5, 15, 60 and 240 minutes.

Four pollers side by side: ours without history, ours with history (earlier runs of the golden sample whose
durations spread ±20 % around this run's), a fixed 15 s poller and a fixed 60 s poller.

- **Poll logic.** Ours is the real `PollPolicy.next_wait`, driven on a virtual clock exactly as
  `watch.poll_run` drives it: the first poll as the watch starts (elapsed 0), then the wait it returns,
  with the elapsed time since the watch started, the watch's deadline (WatchDeadlineMinutes, 360 by
  default), the history as `DurationHistory.from_durations` builds it from the runs table, and jitter
  from a seeded RNG. Each duration is simulated with many seeds; the run's exact completion instant is
  drawn within ±1 % of its nominal duration (seeded, the same instant for all four pollers), so no poller
  profits from a round number.
- **State transitions** come from one real execution of the real state machine (template.yaml on moto,
  through the local stack, against the Talonic emulator): the history's `*StateEntered` events per
  PollRun → RouteOnPoll → Wait loop, and the fixed rest. The fixed pollers are taken to be the same state
  machine with a fixed Wait, so they share those numbers.
- **Detection lag**: from the run's completion to the poll that sees it (virtual time; the Lambda's own
  ~0.1-0.3 s per loop is left out).
- **Cost per 1,000 runs**: Step Functions Standard $0.025 per 1,000 transitions; Lambda arm64 $0.20 per
  1M requests and $0.0000133334 per GB-second at 256 MB, with a *stated* (not measured) 150 ms per
  invocation. Excluded: Talonic's API pricing (unknown, so requests are reported instead), CloudWatch
  Logs and X-Ray, DynamoDB, free tiers, and the alert function's own API calls (the same for every poller).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import REPO, quiet_fds, result_line, table, verdict
from talonic_watchdog.polling import DurationHistory, PollPolicy

DURATIONS_MIN = (1, 5, 15, 60, 240)
SEEDS = 300
HISTORY_RUNS = 5
HISTORY_SPREAD = 0.2  # earlier runs took 0.8 D … 1.2 D
COMPLETION_SPREAD = 0.01  # the run's exact end: D ± 1 %
DEADLINE_SECONDS = 360 * 60  # WatchDeadlineMinutes' default
POLICY = PollPolicy(max_wait_seconds=900)  # PollMaxWaitSeconds' default, as the poll handler builds it

SFN_PER_TRANSITION = 0.025 / 1000
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND = 0.0000133334
LAMBDA_GB = 256 / 1024
LAMBDA_SECONDS = 0.150  # stated, not measured: one GET to Talonic plus a DynamoDB call or two

POLLERS = ("ours, no history", "ours, history", "fixed 15 s", "fixed 60 s")


# -- one real execution: transitions per loop and the fixed overhead ------------------------------------


@dataclass(frozen=True)
class TransitionModel:
    per_loop: int  # state transitions per PollRun -> RouteOnPoll -> Wait loop
    fixed: int  # the rest of an execution (prepare, create, the last poll and choice, alert, succeed)
    lambda_per_loop: int
    lambda_fixed: int
    polls: int
    waits: list[int]
    seconds: float
    states: str  # the states entered, compressed, for the record

    def transitions(self, polls: float) -> float:
        return self.fixed + self.per_loop * (polls - 1)

    def invocations(self, polls: float) -> float:
        return self.lambda_fixed + self.lambda_per_loop * (polls - 1)

    def cost_per_1000_runs(self, polls: float) -> float:
        invocations = self.invocations(polls)
        per_run = (
            self.transitions(polls) * SFN_PER_TRANSITION
            + invocations * LAMBDA_PER_REQUEST
            + invocations * LAMBDA_SECONDS * LAMBDA_GB * LAMBDA_PER_GB_SECOND
        )
        return 1000 * per_run


def count_history(events: list[dict[str, Any]]) -> tuple[int, int, int, int, int, str]:
    """(per_loop, fixed, lambda_per_loop, lambda_fixed, polls, states) from an execution's history."""
    entered = [
        (event["type"], (event.get("stateEnteredEventDetails") or {}).get("name", ""))
        for event in events
        if event["type"].endswith("StateEntered")
    ]
    # A loop ends with the Wait it enters; what lies between two Waits is one loop's worth.
    wait_positions = [index for index, (kind, _) in enumerate(entered) if kind == "WaitStateEntered"]
    loop_sizes = {b - a for a, b in itertools.pairwise(wait_positions)}
    if len(loop_sizes) != 1:
        raise RuntimeError(f"loops of different sizes in the history: {sorted(loop_sizes)}")
    per_loop = loop_sizes.pop()
    loops = len(wait_positions)
    fixed = len(entered) - per_loop * loops
    # Lambda invocations: a Task state scheduling its Lambda (moto: TaskScheduled; AWS: the same for
    # arn:aws:states:::lambda:invoke).
    scheduled = {"TaskScheduled", "LambdaFunctionScheduled"}
    waits_in_events = [index for index, event in enumerate(events) if event["type"] == "WaitStateEntered"]
    lambda_sizes = {
        sum(1 for event in events[a:b] if event["type"] in scheduled) for a, b in itertools.pairwise(waits_in_events)
    }
    if len(lambda_sizes) != 1:
        raise RuntimeError(f"loops with different Lambda invocations: {sorted(lambda_sizes)}")
    lambda_per_loop = lambda_sizes.pop()
    lambda_fixed = sum(1 for event in events if event["type"] in scheduled) - lambda_per_loop * loops
    polls = sum(1 for _, name in entered if name == "PollRun")
    names = [name for _, name in entered]
    compressed: list[str] = []
    for name, group in _runs_of(names):
        compressed.append(name if group == 1 else f"{name}x{group}")
    return per_loop, fixed, lambda_per_loop, lambda_fixed, polls, " ".join(compressed)


def _runs_of(names: list[str]) -> list[tuple[str, int]]:
    """Collapse the repeating loop for printing: Prepare, Has…, Create, [PollRun RouteOnPoll Wait]xn, …"""
    out: list[tuple[str, int]] = []
    index = 0
    loop = ["PollRun", "RouteOnPoll", "WaitBeforeNextPoll"]
    while index < len(names):
        count = 0
        while names[index : index + 3] == loop:
            count += 1
            index += 3
        if count:
            out.append(("[PollRun→RouteOnPoll→WaitBeforeNextPoll]", count))
            continue
        out.append((names[index], 1))
        index += 1
    return out


def real_execution() -> TransitionModel:
    """One watch through the real template on moto: a run created for a job run, clock-driven, 60 s long."""
    from local.stack import LocalStack, VirtualClock
    from local.talonic_emulator import RunBehaviour, TalonicEmulator

    golden = "6f0c4c1e-0b7c-4b0e-9c57-2f6d3f0d8a11"
    read_key, write_key = "tlnc_test_bench_read_0c1d2e", "tlnc_test_bench_write_3f4a5b"
    started = time.perf_counter()
    clock = VirtualClock(1_796_385_600.0)
    with quiet_fds() as log, TalonicEmulator(clock=clock) as emulator:
        emulator.add_key(read_key, scopes={"read"})
        emulator.add_key(write_key, scopes={"read", "write"})
        emulator.behaviour_by_golden_sample[golden] = RunBehaviour(pending_seconds=15, running_seconds=45)
        stack = LocalStack(REPO / "template.yaml", parameters={"TalonicApiUrl": emulator.url}, clock=clock)
        with stack:
            stack.put_secret("ReadKeySecret", read_key)
            stack.put_secret("WriteKeySecret", write_key)
            job_run = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
            arn = stack.start_execution({"dataspace_run_id": job_run, "golden_sample_id": golden, "name": "bench"})
            description = stack.wait_for_execution(arn, timeout=120)
            events = stack.execution_history(arn)
            waits = [int(record.seconds) for record in stack.waits if record.execution_arn == arn]
    log.unlink(missing_ok=True)
    if description["status"] != "SUCCEEDED":
        raise RuntimeError(f"the real execution ended {description['status']}: {description.get('cause')}")
    per_loop, fixed, lambda_per_loop, lambda_fixed, polls, states = count_history(events)
    return TransitionModel(
        per_loop, fixed, lambda_per_loop, lambda_fixed, polls, waits, time.perf_counter() - started, states
    )


# -- the pollers on a virtual clock ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    polls: int
    lag: float


def poll_ours(
    completion: float, history: DurationHistory | None, rng: Callable[[], float], policy: PollPolicy = POLICY
) -> Outcome:
    """`watch.poll_run`'s loop: poll; if not final, wait `next_wait(elapsed since the watch started)`."""
    elapsed = 0.0
    for polls in range(1, policy.max_polls + 1):
        if elapsed >= completion:
            return Outcome(polls, elapsed - completion)
        elapsed += policy.next_wait(
            elapsed_seconds=elapsed,
            seconds_to_deadline=DEADLINE_SECONDS - elapsed,
            history=history,
            rate_limit=None,
            now=elapsed,
            rng=rng,
        )
    raise RuntimeError("poll cap reached")


def poll_fixed(completion: float, period: float) -> Outcome:
    polls = math.floor(completion / period) + 1
    seen_at = (polls - 1) * period
    if seen_at < completion:
        polls += 1
        seen_at += period
    return Outcome(polls, seen_at - completion)


def simulate(duration: float, seeds: int = SEEDS) -> dict[str, list[Outcome]]:
    outcomes: dict[str, list[Outcome]] = {name: [] for name in POLLERS}
    for seed in range(seeds):
        draw = random.Random(f"run:{duration}:{seed}")
        completion = duration * (1 + draw.uniform(-COMPLETION_SPREAD, COMPLETION_SPREAD))
        earlier = [duration * draw.uniform(1 - HISTORY_SPREAD, 1 + HISTORY_SPREAD) for _ in range(HISTORY_RUNS)]
        history = DurationHistory.from_durations(earlier)
        outcomes["ours, no history"].append(poll_ours(completion, None, random.Random(f"j0:{duration}:{seed}").random))
        outcomes["ours, history"].append(poll_ours(completion, history, random.Random(f"j1:{duration}:{seed}").random))
        outcomes["fixed 15 s"].append(poll_fixed(completion, 15))
        outcomes["fixed 60 s"].append(poll_fixed(completion, 60))
    return outcomes


def lag_bound(duration: float) -> float:
    return max(10.0, 0.1 * duration)


def ideal_polls(duration: float) -> int:
    """Fewest polls with which *any* poller that does not know the duration keeps the lag under
    max(10 s, 10 % of the run) for every duration: each wait may be at most max(10 s, 10 % of the age
    at which it starts), or a run ending just after that poll is seen too late. No jitter, no cap."""
    policy = dataclasses.replace(POLICY, jitter_fraction=0.0, max_wait_seconds=1e12)
    return poll_ours(duration, None, lambda: 0.0, policy).polls


def crossover_minutes() -> float | None:
    """The shortest run (whole minutes, 15..240) from which ours without history needs no more requests
    than the fixed 60 s poller, on average."""
    for minutes in range(15, 241):
        outcomes = simulate(minutes * 60.0, seeds=40)
        ours = statistics.fmean(o.polls for o in outcomes["ours, no history"])
        fixed = statistics.fmean(o.polls for o in outcomes["fixed 60 s"])
        if ours <= fixed:
            return float(minutes)
    return None


# -- report ------------------------------------------------------------------------------------------------


def main() -> int:
    print("== Benchmark 1: polling cost (virtual clock, real PollPolicy; transitions from a real execution)\n")
    model = real_execution()
    print(
        f"Real execution (template.yaml on moto, Talonic emulator, a 60 s run created for a job run): "
        f"{model.polls} polls, waits {model.waits} s, {model.seconds:.1f} s of real time.\n"
        f"  states entered: {model.states}\n"
        f"  → state transitions per poll loop (PollRun, RouteOnPoll, WaitBeforeNextPoll): {model.per_loop}; "
        f"fixed per execution: {model.fixed}\n"
        f"  → Lambda invocations per loop: {model.lambda_per_loop}; fixed per execution: {model.lambda_fixed}\n"
        f"  model: transitions = {model.fixed} + {model.per_loop} x (polls - 1); "
        f"invocations = {model.lambda_fixed} + {model.lambda_per_loop} x (polls - 1)\n"
        f"Cost per run = transitions x $0.000025 + invocations x ($0.0000002 + {LAMBDA_SECONDS} s x 0.25 GB x "
        f"$0.0000133334) [150 ms per invocation is stated, not measured].\n"
        f"Simulation: {SEEDS} seeds per duration; completion drawn in D ± {COMPLETION_SPREAD:.0%}; history = "
        f"{HISTORY_RUNS} earlier runs uniform in [{1 - HISTORY_SPREAD:.1f} D, {1 + HISTORY_SPREAD:.1f} D]; "
        f"deadline {DEADLINE_SECONDS // 60} min, max wait {POLICY.max_wait_seconds:.0f} s.\n"
    )

    rows: list[list[object]] = []
    summary: dict[tuple[int, str], dict[str, float]] = {}
    for minutes in DURATIONS_MIN:
        duration = minutes * 60.0
        outcomes = simulate(duration)
        fixed60 = statistics.fmean(o.polls for o in outcomes["fixed 60 s"])
        for name in POLLERS:
            polls = [o.polls for o in outcomes[name]]
            lags = [o.lag for o in outcomes[name]]
            mean_polls = statistics.fmean(polls)
            figures = {
                "requests": mean_polls,
                "requests_max": max(polls),
                "lag_mean": statistics.fmean(lags),
                "lag_max": max(lags),
                "transitions": model.transitions(mean_polls),
                "cost": model.cost_per_1000_runs(mean_polls),
                "vs60": mean_polls / fixed60,
            }
            summary[(minutes, name)] = figures
            rows.append(
                [
                    f"{minutes} min",
                    name,
                    round(mean_polls, 1),
                    max(polls),
                    round(figures["transitions"], 1),
                    round(figures["lag_mean"], 1),
                    round(figures["lag_max"], 1),
                    f"≤ {lag_bound(duration):.0f}",
                    round(figures["cost"], 3),
                    f"{figures['vs60']:.2f}x",
                ]
            )
        rows.append([""] * 10)
    rows.pop()
    print(
        table(
            [
                "run",
                "poller",
                "requests (mean)",
                "max",
                "transitions",
                "lag mean s",
                "lag max s",
                "lag target s",
                "$ / 1,000 runs",
                "requests vs fixed 60 s",
            ],
            rows,
            title="Polling cost per watched run",
        )
    )

    # -- targets -------------------------------------------------------------------------------------------
    lag_misses = [
        (minutes, name)
        for minutes in DURATIONS_MIN
        for name in POLLERS[:2]
        if summary[(minutes, name)]["lag_max"] > lag_bound(minutes * 60.0)
    ]
    nohist = {m: summary[(m, "ours, no history")]["vs60"] for m in DURATIONS_MIN}
    hist = {m: summary[(m, "ours, history")]["vs60"] for m in DURATIONS_MIN}
    nohist_ok = {m: nohist[m] <= 1.0 for m in DURATIONS_MIN if m >= 15}
    hist_half_ok = {m: hist[m] <= 0.5 for m in DURATIONS_MIN if m >= 15}
    hist_quarter_ok = {m: hist[m] <= 0.25 for m in DURATIONS_MIN if m >= 60}
    ideal15 = ideal_polls(15 * 60.0)
    fixed15 = summary[(15, "fixed 60 s")]["requests"]
    crossover = crossover_minutes()

    print("\nTargets")
    print(
        f"  1. max lag ≤ max(10 s, 10 % of the run), ours with and without history: "
        f"{verdict(not lag_misses)}"
        + (f" (missed at {lag_misses})" if lag_misses else "")
        + "; worst lag / bound: "
        + ", ".join(
            f"{m} min {max(summary[(m, n)]['lag_max'] for n in POLLERS[:2]):.0f}/{lag_bound(m * 60.0):.0f} s"
            for m in DURATIONS_MIN
        )
    )
    print(
        "  2. without history, no more requests than fixed 60 s from 15 min on: "
        + ", ".join(f"{m} min {nohist[m]:.2f}x {verdict(ok)}" for m, ok in nohist_ok.items())
    )
    if not all(nohist_ok.values()):
        print(
            f"     Incompatible with target 1 at 15 min, not a tuning matter: a poller that does not know the "
            f"duration must look again within max(10 s, 10 % of the age) after every poll, or a run ending just "
            f"after that poll is seen too late. That alone takes ≥ {ideal15} polls to see a 15-minute run "
            f"(10 polls to 100 s, then x1.1 per poll: 10 + ln 9 / ln 1.1 ≈ 33), against "
            f"{fixed15:.1f} for the fixed 60 s poller, whose own lag reaches "
            f"{summary[(15, 'fixed 60 s')]['lag_max']:.0f} s (bound 90 s) and, on a 1-minute run, "
            f"{summary[(1, 'fixed 60 s')]['lag_max']:.0f} s (bound 10 s). Ours without history needs no more "
            f"requests than the fixed 60 s poller from runs of "
            + (f"{crossover:.0f} minutes on." if crossover else "more than 240 minutes.")
        )
    print(
        "  3. with history, ≤ ½ of fixed 60 s from 15 min on and ≤ ¼ from 60 min on: "
        + ", ".join(f"{m} min {hist[m]:.2f}x ≤ 0.5 {verdict(ok)}" for m, ok in hist_half_ok.items())
        + "; "
        + ", ".join(f"{m} min {hist[m]:.2f}x ≤ 0.25 {verdict(ok)}" for m, ok in hist_quarter_ok.items())
    )
    transitions_share = (
        summary[(60, "ours, no history")]["transitions"]
        * SFN_PER_TRANSITION
        * 1000
        / summary[(60, "ours, no history")]["cost"]
    )
    print(
        f"  Cost: Step Functions transitions are {transitions_share:.0%} of the cost modelled (60 min, no history); "
        f"Lambda is the rest. Talonic requests are priced separately (unknown)."
    )

    met = [not lag_misses, *nohist_ok.values(), *hist_half_ok.values(), *hist_quarter_ok.values()]
    print(
        result_line(
            "polling",
            transitions_per_loop=model.per_loop,
            fixed_transitions=model.fixed,
            lag_target="met" if not lag_misses else "missed",
            **{f"nohist_vs_fixed60_{m}m": f"{nohist[m]:.2f}" for m in DURATIONS_MIN if m >= 15},
            **{f"hist_vs_fixed60_{m}m": f"{hist[m]:.2f}" for m in DURATIONS_MIN if m >= 15},
            ideal_polls_15m=ideal15,
            nohist_breakeven_min=f"{crossover:.0f}" if crossover else "none",
            cost_15m_nohist=f"{summary[(15, 'ours, no history')]['cost']:.3f}",
            cost_15m_fixed60=f"{summary[(15, 'fixed 60 s')]['cost']:.3f}",
            targets_met=f"{sum(met)}/{len(met)}",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
