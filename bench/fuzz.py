"""Fuzz every protocol decoder with atheris (coverage-guided), by hand.

    .venv/bin/pip install atheris        # or: pip install -e '.[bench]'
    .venv/bin/python -m bench.fuzz [--runs 1000000] [--target NAME ...]

The rule is the one the property tests hold every parser to: any input either
parses or raises ``RemoteProtocolError``. Anything else — another exception,
a crash, a hang past libFuzzer's timeout — is a finding, and libFuzzer writes
the input that caused it to ``bench/fuzz-findings/``.

Each target runs in its own process (libFuzzer owns the process it runs in),
starting from a small seed
corpus of valid messages so that mutations reach the deep checks (signatures,
AEAD tags, state transitions) and not only the first length field. The
``--runs`` executions are shared so that every target gets about the same
time: a short calibration run measures each target's rate first (a pairing
message costs a SPAKE2 computation, a card a few bytes of msgpack). The
table at the end gives, per target, the executions, their rate, and the
findings.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

FINDINGS = Path(__file__).resolve().parent / "fuzz-findings"
MAX_LEN = 4096
PER_INPUT_TIMEOUT_S = 5
CALIBRATION_S = 2
MIN_RUNS = 10_000

Target = Callable[[bytes], object]


def _targets() -> dict[str, tuple[Target, list[bytes]]]:
    """Name -> (decoder taking bytes, seed inputs). Built after instrumentation."""
    from bench import fuzz_targets

    return fuzz_targets.build()


def child(name: str, runs: int, seconds: int, corpus: Path) -> None:
    import atheris

    with atheris.instrument_imports(include=["protocol"]):
        import protocol  # noqa: F401 - instrumented for coverage feedback
    from protocol import RemoteProtocolError

    decode, seeds = _targets()[name]
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds):
        (corpus / f"seed-{i}").write_bytes(seed)

    def one_input(data: bytes) -> None:
        with contextlib.suppress(RemoteProtocolError):
            decode(data)

    FINDINGS.mkdir(exist_ok=True)
    args = [
        sys.argv[0],
        f"-runs={runs}",
        f"-max_total_time={seconds}",
        f"-max_len={MAX_LEN}",
        f"-timeout={PER_INPUT_TIMEOUT_S}",
        f"-rss_limit_mb={512}",
        f"-artifact_prefix={FINDINGS}/{name}-",
        "-print_final_stats=1",
        str(corpus),
    ]
    atheris.Setup(args, one_input)
    atheris.Fuzz()


def run_target(name: str, runs: int, seconds: int = 0) -> tuple[int, float, str]:
    """Run one target in a child process; return (executions, seconds, outcome).

    ``seconds`` (if not 0) stops the run after that much fuzzing time.
    """
    with tempfile.TemporaryDirectory(prefix=f"pli-fuzz-{name}-") as tmp:
        started = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.fuzz",
                "--child",
                name,
                "--runs",
                str(runs),
                "--seconds",
                str(seconds),
                "--corpus",
                str(Path(tmp) / "corpus"),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
        elapsed = time.perf_counter() - started
    done = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    executed = int(done.group(1)) if done else 0
    if proc.returncode == 0:
        return executed, elapsed, "0 findings"
    lines = [line for line in proc.stderr.splitlines() if "Error" in line or "==" in line]
    summary = lines[0][:60] if lines else f"exit {proc.returncode}"
    return executed, elapsed, f"FINDING: {summary}"


def equal_time_shares(names: list[str], runs: int) -> dict[str, int]:
    """Runs per target so that each takes about the same time (rates calibrated)."""
    rates = {}
    for name in names:
        executed, _, _ = run_target(name, 10**9, seconds=CALIBRATION_S)
        rates[name] = executed / CALIBRATION_S
    total_rate = sum(rates.values())
    return {
        name: max(MIN_RUNS, math.ceil(runs * rate / total_rate)) for name, rate in rates.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="executions in total")
    parser.add_argument("--target", action="append", help="only these targets")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.child, options.runs, options.seconds, options.corpus)
        return
    names = options.target or sorted(_targets())
    shares = equal_time_shares(names, options.runs)
    print(f"atheris, {len(names)} decoders, {options.runs:,} executions, {os.cpu_count()} CPUs")
    print(f"{'decoder':<28} {'executions':>12} {'seconds':>8} {'exec/s':>8}  outcome")
    total, failed = 0, 0
    for name in names:
        executed, seconds, outcome = run_target(name, shares[name])
        total += executed
        failed += outcome != "0 findings"
        rate = executed / seconds if seconds else 0
        print(f"{name:<28} {executed:>12,} {seconds:>8.1f} {rate:>8,.0f}  {outcome}", flush=True)
    print(f"{'total':<28} {total:>12,}  {failed} target(s) with findings")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
