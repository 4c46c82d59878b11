"""The benchmark's results as the Markdown table the README shows."""

from __future__ import annotations

OWNER_TASKS_PER_PROJECT = 2000  # tasks of each project on disk for the cold `complete`


def table(results: dict) -> str:
    lines = ["| measure | result |", "| --- | --- |"]
    postgres = results["machine"]["storage"] == "postgresql"
    floor = "INSERT; COMMIT" if postgres else "fsync"
    for depth, row in results["bulk_load"].items():
        lines.append(f"| bulk load, {int(depth):,} tasks | {row['tasks_per_s']:,.0f} tasks/s "
                     f"(**{row['vs_floor']:.2f}x** the floor's "
                     f"{row['floor_tasks_per_s']:,.0f}) |")
    for agents, row in results["floor"].items():
        lines.append(f"| floor (bare Flask + {floor}), {agents} agent(s) | "
                     f"{row['cycles_per_s']:,.0f} cycles/s; cycle p50 "
                     f"{row['cycle_p50_ms']:.1f} ms |")
    for row in results["agent_cycle"].values():
        lines.append(f"| agent cycle, depth {row['depth']:,}, {row['agents']} agent(s) | "
                     f"{row['cycles_per_s']:,.0f} cycles/s (**{row['vs_floor']:.2f}x** the "
                     f"floor); next-task p50 {row['next_task_p50_ms']:.1f} ms, p99 "
                     f"{row['next_task_p99_ms']:.1f} ms; cycle p50 {row['cycle_p50_ms']:.1f} ms |")
    for name, ratio in results.get("ratios", {}).items():
        lines.append(f"| {name.replace('_', ' ')} | {ratio:.2f}x |")
    if "spread" in results:
        spread = results["spread"]
        lines.append(f"| {spread['agents']} agents on one project vs spread over "
                     f"{spread['agents']} projects | {spread['one']:,.0f} vs "
                     f"{spread['spread']:,.0f} cycles/s (**{spread['ratio']:.2f}x**) |")
    if "waiting" in results:
        held = results["waiting"]
        lines.append(f"| agent cycle, {held['agents']} agent(s), beside "
                     f"{held['waiting_tasks']:,} waiting tasks vs none | "
                     f"{held['waiting']:,.0f} vs {held['none']:,.0f} cycles/s "
                     f"(**{held['ratio']:.2f}x**) |")
    cold = results["cold_start"]
    lines.append(f"| cold start, {cold['tasks']:,} tasks | first answer "
                 f"{cold['first_request_s']:.2f} s; worker RSS {cold['worker_rss_mb']:.0f} MB "
                 f"(peak {cold['worker_peak_rss_mb']:.0f} MB) |")
    if "worker_classes" in results:
        classes = results["worker_classes"]
        lines.append(f"| agent cycle, depth 1,000, sync vs threaded workers | "
                     f"{classes['sync']:,.0f} vs {classes['gthread']:,.0f} cycles/s "
                     f"({classes['ratio']:.2f}x) |")
    for count, ms in results.get("cold_complete_ms", {}).items():
        lines.append(f"| first complete on a cold worker, {int(count)} project(s) of "
                     f"{OWNER_TASKS_PER_PROJECT:,} tasks | {ms:.0f} ms |")
    return "\n".join(lines)
