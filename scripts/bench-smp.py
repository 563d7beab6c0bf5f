#!/usr/bin/env python3
"""In-guest allocation scaling: `bench alloc` on 1 CPU and on 2.

Boots the kernel (scripts/qemu.sh) with MEMQUOTA_CPUS=1, then 2; at the
console of each runs `bench alloc` with 1 and 2 threads, on one shared
account and on separate accounts; prints a table of pairs per second and
the ratio of the 2-CPU figure to the 1-CPU one.

Usage: bench-smp.py KERNEL_ELF [--seconds S] [--cpus 1,2]
Run through scripts/bench-smp.sh, which builds the kernel. Standard library
only. Every guest is killed after --deadline seconds (default 100) and each
console step has its own timeout, so a hung guest fails the run instead of
hanging it.
"""

import argparse
import re
import sys
import time

from guest_console import PROMPT, Guest, Unanswered, free_port

RUNS = [(1, "shared"), (1, "separate"), (2, "shared"), (2, "separate")]


def total(text):
    match = re.search(r"total: (\d+) pairs/s", text)
    if not match:
        raise Unanswered(f"no total in:\n{text}")
    return int(match.group(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("elf")
    parser.add_argument("--seconds", default="3")
    parser.add_argument("--cpus", default="1,2")
    parser.add_argument("--deadline", type=float, default=100)
    args = parser.parse_args()
    cpu_counts = [int(c) for c in args.cpus.split(",")]
    results = {}
    failed = False
    for cpus in cpu_counts:
        started = time.monotonic()
        env = {"MEMQUOTA_CPUS": str(cpus), "MEMQUOTA_APPEND": "",
               "MEMQUOTA_SSH_PORT": str(free_port())}
        guest = Guest(args.elf, env, deadline=args.deadline)
        try:
            guest.expect(PROMPT, 60)
            for threads, accounts in RUNS:
                line = f"bench alloc --threads {threads} --{accounts} --seconds {args.seconds}"
                print(f"[{cpus} CPU(s)] {line}", flush=True)
                text = guest.run(line, float(args.seconds) + 15)
                for out in text.replace("\r\n", "\n").splitlines()[1:]:
                    if out.strip() and not out.startswith(PROMPT.decode()):
                        print(f"    {out}")
                results[(cpus, threads, accounts)] = total(text)
        except Unanswered as why:
            failed = True
            print(f"bench-smp: the {cpus}-CPU guest failed: {why}", file=sys.stderr)
        guest.stop()
        print(f"[{cpus} CPU(s)] guest done in {time.monotonic() - started:.1f} s")
    print()
    head = "".join(f"{f'{c} CPU(s)':>14}" for c in cpu_counts)
    ratio = len(cpu_counts) > 1
    print(f"{'threads':>8} {'accounts':>9}{head}" + (f"{'ratio':>9}" if ratio else ""))
    for threads, accounts in RUNS:
        figures = [results.get((c, threads, accounts)) for c in cpu_counts]
        row = "".join(f"{f:>14,}" if f is not None else f"{'-':>14}" for f in figures)
        if ratio:
            first, last = figures[0], figures[-1]
            row += f"{last / first:>8.2f}x" if first and last is not None else f"{'-':>9}"
        print(f"{threads:>8} {accounts:>9}{row}")
    print(f"(pairs/s of {args.seconds}-second runs; ratio: {cpu_counts[-1]} CPU(s) over {cpu_counts[0]})")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
