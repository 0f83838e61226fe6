"""The report of bench_family_ride_check: a line per run, then the medians per scenario
against the target (engage >= TARGET x the plain statement's throughput)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.bench_purchase_create import CLIENT, MACHINE, POSTGRES, SERVER, Run

TARGET = 0.4
NOISY_SHARE = 0.10
MIN_WINDOW = 200  # holds
SUBJECT, BASELINE = "engage", "sql"


@dataclass
class RideRun(Run):
    holds: int = 0  # HELD holds in the database after warm-up + run
    max_member_holds: int = 0  # the most holds one member had at the end
    series: list[tuple[float, int]] = field(default_factory=list)  # (monotonic s, holds)

    def time_at(self, holds: int) -> float:
        """When the run reached `holds` holds (linear between samples)."""
        previous = self.series[0]
        for sample in self.series[1:]:
            if sample[1] >= holds:
                span = max(sample[1] - previous[1], 1)
                return previous[0] + (sample[0] - previous[0]) * (holds - previous[1]) / span
            previous = sample
        return previous[0]

    def rate_between(self, low: int, high: int) -> float:
        """Holds per second while the run went from `low` to `high` holds."""
        return (high - low) / max(self.time_at(high) - self.time_at(low), 1e-9)


def common_window(runs: list[RideRun]) -> tuple[int, int]:
    """The hold counts every run passed through during its measured part: every statement
    sums the member's live holds, so a run's rate falls as its holds pile up, and a faster
    path would pay for its own speed; the rates in this window compare equal states."""
    return max(r.series[0][1] for r in runs), min(r.series[-1][1] for r in runs)


HEADER = (
    f"{'scenario':<8} {'path':<7} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}"
    f" {'max ms':>7} {'reqs':>6} {'errors':>6} {'holds':>6} {'max/mb':>6} {'busy0':>5}"
    f" {'other':>5}  cores: {'server':>6} {'client':>6} {'pg':>5} {'all':>5}"
    f"  backends: {'run':>5} {'idlTx':>5} {'lock':>5} {'lwl/io':>6}"
    f"  ms CPU/op: {'app':>5} {'pg':>5} {'all':>5}"
)


def _app(run: Run) -> str:
    """The process doing a path's work besides PostgreSQL: the server or the baseline."""
    return SERVER if run.path == SUBJECT else CLIENT


def format_run(run: RideRun) -> str:
    cpu, waits = run.cpu, run.waits
    lock = sum(v for k, v in waits.items() if k.startswith("Lock:"))
    lwlock = sum(v for k, v in waits.items() if k.startswith(("IO:", "LWLock:")))
    return (
        f"{run.scenario:<8} {run.path:<7} {run.rate:7.0f} {run.p50_ms:7.1f} {run.p90_ms:7.1f}"
        f" {run.p99_ms:7.1f} {run.max_ms:7.0f} {run.requests:6d} {run.failed:6d}"
        f" {run.holds:6d} {run.max_member_holds:6d} {run.busy_before:5.0%}"
        f" {run.others_share:5.0%}         {cpu.get(SERVER, 0):6.2f} {cpu.get(CLIENT, 0):6.2f}"
        f" {cpu.get(POSTGRES, 0):5.2f} {cpu.get(MACHINE, 0):5.2f}            "
        f"{waits.get('running', 0.0):5.1f} {waits.get('idle in transaction', 0.0):5.1f}"
        f" {lock:5.1f} {lwlock:6.1f}             {run.cpu_ms_per_op(_app(run)):5.2f}"
        f" {run.cpu_ms_per_op(POSTGRES):5.2f} {run.cpu_ms_per_op(MACHINE):5.2f}"
    )


def _verdict(ratio: float) -> str:
    return "met" if ratio >= TARGET else f"MISSED by {TARGET - ratio:.3f}"


def _median(runs: list[RideRun], value: Callable[[RideRun], float]) -> float:
    return statistics.median(value(run) for run in runs)


def scenario_report(scenario: str, runs: list[RideRun]) -> dict[str, float]:
    """The medians per path, the ratio, and the ratio at equal hold counts."""
    chosen = {path: [r for r in runs if r.path == path] for path in (SUBJECT, BASELINE)}
    rate = {path: _median(chosen[path], lambda r: r.rate) for path in chosen}
    p50 = {path: _median(chosen[path], lambda r: r.p50_ms) for path in chosen}
    p99 = {path: _median(chosen[path], lambda r: r.p99_ms) for path in chosen}
    app_ms = {path: _median(chosen[path], lambda r: r.cpu_ms_per_op(_app(r))) for path in chosen}
    pg_ms = {path: _median(chosen[path], lambda r: r.cpu_ms_per_op(POSTGRES)) for path in chosen}
    ratio = rate[SUBJECT] / rate[BASELINE]
    print(
        f"{scenario}: engage {rate[SUBJECT]:.0f} req/s (p50 {p50[SUBJECT]:.1f} ms, p99"
        f" {p99[SUBJECT]:.1f} ms); sql {rate[BASELINE]:.0f} req/s (p50 {p50[BASELINE]:.1f}"
        f" ms, p99 {p99[BASELINE]:.1f} ms); engage/sql {ratio:.3f} (target {TARGET}:"
        f" {_verdict(ratio)}), p99 engage/sql {p99[SUBJECT] / p99[BASELINE]:.1f}x; CPU per"
        f" request: engage server {app_ms[SUBJECT]:.2f} ms + PostgreSQL"
        f" {pg_ms[SUBJECT]:.2f} ms, sql client {app_ms[BASELINE]:.2f} ms + PostgreSQL"
        f" {pg_ms[BASELINE]:.2f} ms"
    )
    figures = {
        f"{scenario}_engage_rps": rate[SUBJECT],
        f"{scenario}_sql_rps": rate[BASELINE],
        f"{scenario}_ratio": ratio,
        f"{scenario}_engage_p99_ms": p99[SUBJECT],
        f"{scenario}_sql_p99_ms": p99[BASELINE],
    }
    low, high = common_window(runs)
    if high - low < MIN_WINDOW:
        print(f"  no common window of hold counts ({low}-{high})")
        return figures
    equal = {path: _median(chosen[path], lambda r: r.rate_between(low, high)) for path in chosen}
    equal_ratio = equal[SUBJECT] / equal[BASELINE]
    print(
        f"  at equal hold counts (from {low} to {high} holds): engage {equal[SUBJECT]:.0f}"
        f" holds/s, sql {equal[BASELINE]:.0f} holds/s, engage/sql {equal_ratio:.3f}"
        f" (target {TARGET}: {_verdict(equal_ratio)})"
    )
    return figures | {f"{scenario}_equal_holds_ratio": equal_ratio}


def report(runs: list[RideRun], scenarios: list[str]) -> dict[str, float]:
    figures: dict[str, float] = {}
    print()
    for scenario in scenarios:
        figures |= scenario_report(scenario, [r for r in runs if r.scenario == scenario])
    noisy = [run for run in runs if run.others_share > NOISY_SHARE]
    if noisy:
        print(
            f"WARNING: {len(noisy)} run(s) shared the machine with other work (more than"
            f" {NOISY_SHARE:.0%} of the busy CPU was not ours): their figures are pessimistic"
        )
    return figures
