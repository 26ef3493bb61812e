"""The results as a table for the terminal, and as strict JSON (no NaN)."""

from __future__ import annotations

import math
from typing import Any

JsonDict = dict[str, Any]
PATHS = ("direct", "grpc", "rest", "ollama")
HEADINGS = ("direct", "gRPC", "REST", "Ollama face")
REAL_HEADINGS = {
    "direct": "direct",
    "grpc": "gRPC",
    "rest": "REST",
    "openai": "OpenAI face",
    "ollama": "Ollama face",
}


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _pair(a: Any, b: Any, digits: int = 2) -> str:
    return f"{_num(a, digits)} / {_num(b, digits)}"


class _Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def section(self, title: str) -> None:
        self.rows.append((title,))

    def row(self, label: str, values: dict[str, str], note: str = "") -> None:
        self.rows.append(("  " + label, *(values.get(p, "") for p in PATHS), note))

    def render(self) -> str:
        widths = [38, 14, 16, 16, 16]
        head = "".ljust(widths[0]) + "".join(
            h.rjust(w) for h, w in zip(HEADINGS, widths[1:], strict=True)
        )
        lines = [head + "   target"]
        for r in self.rows:
            if len(r) == 1:
                lines.append(r[0])
                continue
            cells = r[0].ljust(widths[0]) + "".join(
                c.rjust(w) for c, w in zip(r[1:5], widths[1:], strict=True)
            )
            lines.append(cells + (f"   {r[5]}" if r[5] else ""))
        return "\n".join(lines)


def _cores(rounds: list[JsonDict], path: str) -> str:
    """Median cores used by the service processes in a path's rounds."""
    values = sorted(
        sum(v for k, v in r[path]["cpu_cores"].items() if k.startswith("service")) for r in rounds
    )
    return _num(values[len(values) // 2]) if values else "-"


def _cost(rounds: list[JsonDict], path: str, key: str, who: str, digits: int = 2) -> str:
    """Median over rounds of the CPU ``who`` spent per unit of work."""
    values = sorted(r[path][key][who] for r in rounds if who in r[path].get(key, {}))
    return _num(values[len(values) // 2], digits) if values else "-"


def _streams(t: _Table, st: JsonDict, paced: bool) -> None:
    med = st["median"]
    if paced:
        added = st["added"]
        t.section(
            f"streams: {st['streams']} at {st['token_delay_s'] * 1000:g} ms/token, "
            f"{st['duration_s']:g} s rounds"
        )
        t.row(
            "first token, late by p50 / p99 (ms)",
            {p: _pair(med[p]["first_token_p50_ms"], med[p]["first_token_p99_ms"]) for p in med},
        )
        t.row(
            "added to first token p50 / p99 (ms)",
            {
                p: _pair(added[p]["first_token_p50_ms"], added[p]["first_token_p99_ms"])
                for p in added
            },
        )
        t.row(
            "next tokens, late by p50 / p99 (ms)",
            {p: _pair(med[p]["lateness_p50_ms"], med[p]["lateness_p99_ms"]) for p in med},
        )
        t.row(
            "added per token p50 / p99 (ms)",
            {p: _pair(added[p]["p50_ms"], added[p]["p99_ms"]) for p in added},
            "p99 < 5",
        )
        t.row(
            "inter-token gap p50 / p99 (ms)",
            {p: _pair(med[p]["gap_p50_ms"], med[p]["gap_p99_ms"]) for p in med},
        )
    else:
        t.section(
            f"max relay rate: {st['streams']} streams, no token delay, "
            f"{st['duration_s']:g} s rounds"
        )
    t.row("chunks relayed per s", {p: _num(med[p]["chunks_per_s"], 0) for p in med})
    ratio = st["ratio_to_direct"]
    t.row(
        "ratio to direct / errors",
        {
            p: f"{_num(ratio.get(p))} / {st['errors'][p]}"
            if p != "direct"
            else f"- / {st['errors'][p]}"
            for p in med
        },
    )
    t.row("service cores used", {p: _cores(st["rounds"], p) for p in med if p != "direct"})
    t.row(
        "CPU us per chunk: service",
        {p: _cost(st["rounds"], p, "cpu_us_per_chunk", "service", 0) for p in med if p != "direct"},
    )


def _realmodel(real: JsonDict) -> str:
    """The real-model phase: its own table, with the OpenAI face as a fifth path."""
    names = [n for n in REAL_HEADINGS if n in real["median"]]
    med, added = real["median"], real["added"]
    head = "".ljust(38) + "".join(REAL_HEADINGS[n].rjust(13) for n in names)
    lines = [
        f"real model: llama.cpp's llama-server, {real['model']}, {real['max_tokens']} tokens, "
        f"{real['streams_per_round']} streams per path and round, one at a time",
        head,
    ]

    def row(label: str, cells: dict[str, str]) -> None:
        lines.append(("  " + label).ljust(38) + "".join(cells.get(n, "").rjust(13) for n in names))

    for key, label, digits in (
        ("ttft_ms", "first token (ms)", 1),
        ("tokens_per_s", "tokens/s after the first", 1),
        ("total_ms", "whole stream (ms)", 0),
    ):
        row(label, {n: _num(med[n][key], digits) for n in names})
        row("  added", {n: _num(added[n][key], digits) for n in added})
    row("tokens per stream", {n: _num(med[n]["tokens"], 0) for n in names})
    row(
        "CPU ms per stream: service / llama",
        {
            n: f"{_num(med[n]['service_cpu_ms'], 1)} / {_num(med[n]['llama_cpu_ms'], 0)}"
            for n in names
        },
    )
    row("failed streams", {n: str(real["errors"][n]) for n in names})
    spread = real["direct_spread_p10_p90"]
    lines.append(
        f"  direct's own spread (p10-p90 of its streams): first token "
        f"{_num(spread['ttft_ms'], 1)} ms, tokens/s {_num(spread['tokens_per_s'], 1)}; "
        f"the same answer on every path: {'yes' if real['same_answer_everywhere'] else 'NO'}"
    )
    peaks = real.get("peak_rss_kb", {})
    if peaks:
        lines.append(
            "  peak RSS (MB): " + ", ".join(f"{n} {kb / 1024:.0f}" for n, kb in peaks.items())
        )
    return "\n".join(lines)


def _project(function: str) -> bool:
    """A profile entry ``name (module)`` from the service's own code."""
    return function.endswith(")") and function.rsplit("(", 1)[1].startswith(
        ("server.", "rest_shim.")
    )


def table(results: JsonDict) -> str:
    """The side-by-side table: medians of the rounds, then the targets."""
    cfg, machine = results["config"], results["machine"]
    t = _Table()
    lat = results.get("latency")
    if lat:
        t.section(f"latency, concurrency 1 ({lat['requests_per_round']} requests per round)")
        med = lat["median"]
        t.row("p50 / p99 (ms)", {p: _pair(med[p]["p50_ms"], med[p]["p99_ms"]) for p in med})
        added = lat["added"]
        t.row(
            "added p50 / p99 (ms)",
            {p: _pair(added[p]["p50_ms"], added[p]["p99_ms"]) for p in added},
            "p50: gRPC < 0.5, REST and Ollama < 1.0",
        )
        lean = lat.get("lean_http_client")
        if lean:
            added = lean["added"]
            t.row(
                "same, lean HTTP client: added",
                {p: _pair(added[p]["p50_ms"], added[p]["p99_ms"]) for p in added},
            )
    tp = results.get("throughput")
    if tp:
        t.section(f"throughput, concurrency {tp['concurrency']}, {tp['duration_s']:g} s rounds")
        t.row("requests per s", {p: _num(v, 0) for p, v in tp["median_rps"].items()})
        ratio = tp["ratio_to_direct"]
        t.row(
            "ratio to direct / errors",
            {
                p: (
                    f"{_num(ratio[p])} / {tp['errors'][p]}"
                    if p in ratio
                    else f"- / {tp['errors'][p]}"
                )
                for p in tp["median_rps"]
            },
            "REST and Ollama >= 0.30, 0 errors",
        )
        t.row("service cores used", {p: _cores(tp["rounds"], p) for p in PATHS[1:]})
        rounds = tp["rounds"]
        t.row(
            "CPU ms per request: service",
            {p: _cost(rounds, p, "cpu_ms_per_request", "service") for p in PATHS[1:]},
        )
        emulator = next((k for k in rounds[0]["direct"]["cpu_cores"] if k.startswith("emul")), "")
        t.row(
            "CPU ms per request: emulator / client",
            {
                p: _cost(rounds, p, "cpu_ms_per_request", emulator)
                + " / "
                + _cost(rounds, p, "cpu_ms_per_request", "client")
                for p in PATHS
            },
        )
        others = max(max(r[p]["cpu_cores"]["others"] for p in r) for r in tp["rounds"])
        if others > 0.2:
            t.section(f"  ! other processes used up to {others:.2f} cores during these rounds")
    if results.get("streams"):
        _streams(t, results["streams"], paced=True)
    if results.get("rate"):
        _streams(t, results["rate"], paced=False)
    mem = results.get("memory", {})
    lines = [t.render()] if t.rows else []
    if results.get("realmodel"):
        lines.append(("\n" if lines else "") + _realmodel(results["realmodel"]))
    peaks = mem.get("peak_rss_kb", {})
    if peaks:
        lines.append(
            "\npeak RSS (VmHWM, MB): "
            + ", ".join(f"{name} {kb / 1024:.0f}" for name, kb in peaks.items())
        )
    if mem.get("growth_pct"):
        first, last = mem["marks"]
        lines.append(
            f"RSS after {first} -> {last} requests (MB): "
            + ", ".join(
                f"{n} {mem['rss_kb_first'][n] / 1024:.1f} -> {mem['rss_kb_last'][n] / 1024:.1f}"
                f" ({g:+.1f}%)"
                for n, g in mem["growth_pct"].items()
            )
        )
    elif "counted_requests" in mem:
        lines.append(f"RSS: only {mem['counted_requests']} requests counted, no growth figure")
    lg = results.get("ledger")
    if lg:
        lines.append(
            f"\nledger, REST chat: {lg['requests_per_round']} serial requests, then "
            f"{lg['concurrency']} workers, per store"
        )
        lines.append("  " + "".ljust(30) + "".join(n.rjust(13) for n in lg["stores"]))
        cells: list[tuple[str, dict[str, Any]]] = [
            ("added p50 vs direct (ms)", {n: v["p50_ms"] for n, v in lg["added"].items()}),
            (
                "added p50 vs ledger off (ms)",
                {n: v["p50_ms"] for n, v in lg["added_to_off"].items()},
            ),
            ("throughput / direct", lg["ratio_to_direct"]),
            ("throughput / ledger off", lg["ratio_to_off"]),
            ("errors", lg["errors"]),
        ]
        for label, values in cells:
            lines.append(
                "  "
                + label.ljust(30)
                + "".join(_num(values.get(n)).rjust(13) for n in lg["stores"])
            )
    sk = results.get("soak")
    if sk:
        moments = ", ".join(f"{k} {v}" for k, v in sorted(sk["moments"].items()))
        lines.append(
            f"\nsoak, {sk['duration_s']:g} s with {sk['clients']} clients leaving at random "
            f"({moments}): {sk['counted']} requests counted = {sk['successes']} successes + "
            f"{sk['failures']} failures + {sk['cancellations']} cancellations; at the end "
            f"{sk['running_at_end']} running, {sk['queued_at_end']} queued"
        )
    prof = results.get("profile")
    if prof:
        lines.append("\nprofile (py-spy, share of samples):")
        for key, p in prof.items():
            if not isinstance(p, dict) or "self_by_module" not in p:
                lines.append(f"  {key}: {p}")
                continue
            mods = ", ".join(f"{m} {v:g}%" for m, v in p["self_by_module"][:8])
            ours = [(f, v) for f, v in p["inclusive_by_function"] if _project(f)][:6]
            funcs = ", ".join(f"{f} {v:g}%" for f, v in p["self_by_function"][:5])
            lines.append(
                f"  {key}: {p['samples']} samples\n    self by module: {mods}"
                f"\n    project code, inclusive: {', '.join(f'{f} {v:g}%' for f, v in ours)}"
                f"\n    self by function: {funcs}"
            )
    if results.get("dead_processes"):
        lines.append("\n! processes died: " + ", ".join(results["dead_processes"]))
    lines.append("\ntargets:")
    for c in results.get("targets", []):
        mark = "met" if c["met"] else "NOT met"
        lines.append(f"  {c['target']:<44} {_num(c['value']):>8}   {mark}")
    title = (
        f"LLM service cost on top of Ollama: {machine['cpu_count']} cores, {cfg['mode']}, "
        f"median of {cfg['rounds']} interleaved rounds"
        + (" (QUICK smoke run: not for comparison)" if cfg["quick"] else "")
    )
    load = machine.get("loadavg_at_start", [0.0])[0]
    return f"{title}\nload average at start {load:.2f}, run took {results['elapsed_s']} s\n\n" + (
        "\n".join(lines)
    )
