#!/usr/bin/env python3
"""Checks that the kernel's modules depend on each other in one direction.

Also checks that unsafe code is denied at the crate root and allowed only
in the modules ARCHITECTURE.md names.

Reads every `crate::MODULE` path (in `use` lines and in code) and the
kernel's own macros (`kprintln!` is the console's, ...) in kernel/src, and
fails if a module uses one in a higher layer, or if any import cycle exists
between top-level modules. The layers are ARCHITECTURE.md's "Kernel layers".

Usage: scripts/check-layers.py [KERNEL_SRC]   (exit status 1 on a violation)
"""

import pathlib
import re
import sys

# Lowest first. Modules in one layer may use each other, but not in a cycle.
LAYERS = [
    ["arch"],
    ["cpu", "sync", "time", "bootinfo", "rng"],
    ["heap"],
    ["sched"],
    ["tty", "console"],
    ["proc", "cmdline", "pressure"],
    ["net"],
    ["fs"],
    ["shell", "ktest"],
    ["ssh"],
    ["irq", "panic"],
]
MACROS = {
    "kprint": "console",
    "kprintln": "console",
    "out": "shell",
    "outln": "shell",
    "ensure": "ktest",
    "tests": "ktest",
}
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
# The only files that may lift the crate root's `#![deny(unsafe_code)]`.
UNSAFE_ALLOWED = {"arch/aarch64/mod.rs", "sync.rs", "sched/switch.rs"}


def module_of(path: pathlib.Path, src: pathlib.Path) -> str | None:
    rel = path.relative_to(src)
    if rel.parts == ("main.rs",):
        return None  # the crate root sits above every layer
    return rel.parts[0].removesuffix(".rs")


def strip_comments(text: str) -> str:
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def edges(src: pathlib.Path) -> dict[str, dict[str, str]]:
    """module -> {used module: first file:line that uses it}"""
    found: dict[str, dict[str, str]] = {}
    for path in sorted(src.rglob("*.rs")):
        module = module_of(path, src)
        if module is None:
            continue
        text = strip_comments(path.read_text())
        for number, line in enumerate(text.splitlines(), 1):
            used = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", line))
            # `use crate::{a, b::c}` groups
            for group in re.findall(r"\bcrate::\{([^}]*)\}", line):
                used.update(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
            used.update(MACROS[m] for m in re.findall(r"\b([a-z_]+)!", line) if m in MACROS)
            for target in used:
                if target == module or target not in RANK:
                    continue
                where = f"{path.relative_to(src.parent.parent)}:{number}"
                found.setdefault(module, {}).setdefault(target, where)
    return found


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    src = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "kernel" / "src"
    graph = edges(src)
    problems = []
    modules = {module_of(p, src) for p in src.rglob("*.rs")} - {None}
    for module in sorted(modules):
        if module not in RANK:
            problems.append(f"{module}: not in any layer (add it to LAYERS and ARCHITECTURE.md)")
    for module, targets in sorted(graph.items()):
        for target, where in sorted(targets.items()):
            if module in RANK and RANK[target] > RANK[module]:
                problems.append(
                    f"{where}: {module} (layer {RANK[module]}) uses {target} "
                    f"(layer {RANK[target]}), a higher layer"
                )
    # Cycles among all top-level modules, same-layer ones included.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                problems.append("import cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src).as_posix()
        text = strip_comments(path.read_text())
        if "allow(unsafe_code)" in text and rel not in UNSAFE_ALLOWED:
            problems.append(f"{rel}: allows unsafe code outside {sorted(UNSAFE_ALLOWED)}")
    if "#![deny(unsafe_code)]" not in (src / "main.rs").read_text():
        problems.append("main.rs: the crate root must deny unsafe code")
    for problem in problems:
        print(f"check-layers: {problem}", file=sys.stderr)
    if problems:
        return 1
    count = sum(len(t) for t in graph.values())
    print(f"check-layers: {len(modules)} modules, {count} dependencies, all pointing down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
