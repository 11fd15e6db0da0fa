#!/usr/bin/env python3
"""Merges the JSON fragments of the bench parts (tests/bench/*.sh --out)
into one document with the machine's facts, prints the summary table with
the issue's targets, and writes it (build/bench/latest.json)."""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys


def merge(into, frag):
    for key, value in frag.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "memory_bytes": mem_kib * 1024, "commit": commit or None}


def get(doc, path):
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def fmt(value, unit="", digits=0):
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}{unit}"
    return f"{value:,.0f}{unit}"


def verdict(value, goal, higher_is_better=True):
    if value is None:
        return "n/a"
    ok = value >= goal if higher_is_better else value <= goal
    return "met" if ok else "MISSED"


def print_summary(doc):
    fw = doc.get("forwarding") or {}
    print()
    print("== forwarding a -> r -> b (172-byte payload unless stated) ==")
    print(f"{'forwarder':<14}{'pps':>12}{'CPU ns/pkt':>12}{'pps 60 B':>12}{'ns/pkt 60 B':>13}")
    for name in ("bare_redirect", "xdp", "conntrack", "userspace", "rtpengine"):
        print(f"{name:<14}{fmt(get(fw, 'pps.' + name)):>12}"
              f"{fmt(get(fw, 'cpu_ns_per_packet.' + name)):>12}"
              f"{fmt(get(fw, 'by_size.60.pps.' + name)):>12}"
              f"{fmt(get(fw, 'by_size.60.cpu_ns_per_packet.' + name)):>13}")
    print()
    print("== targets ==")
    rows = [
        ("xdp / userspace pps", get(fw, "ratios.xdp_over_userspace"), 5.0, True),
        ("xdp / conntrack pps", get(fw, "ratios.xdp_over_conntrack"), 1.3, True),
        ("xdp / rtpengine pps", get(fw, "ratios.xdp_over_rtpengine"), 4.0, True),
        ("xdp / bare redirect pps", get(fw, "ratios.xdp_over_bare_redirect"), 0.85, True),
        ("userspace CPU / xdp CPU per packet", get(fw, "ratios.userspace_cpu_over_xdp_cpu"), 10.0, True),
        ("rtpengine CPU / xdp CPU per packet", get(fw, "ratios.rtpengine_cpu_over_xdp_cpu"), 10.0, True),
        ("BPF match path ns/packet", get(doc, "prog_test_run_ns.match"), 100, False),
        ("offer+answer setups/s", get(doc, "control.setups_per_s"), 5000, True),
        ("setup p99 ms", get(doc, "control.p99_ms"), 2.0, False),
        ("setups/s at ceiling / idle", get(doc, "control.ratio_ceiling_over_idle"), 0.9, True),
    ]
    for label, value, goal, higher in rows:
        sign = ">=" if higher else "<="
        shown = fmt(value, digits=2) if isinstance(value, float) else fmt(value)
        print(f"{label:<38}{shown:>12}   goal {sign} {goal:<8} {verdict(value, goal, higher)}")
    print()
    print("== BPF_PROG_TEST_RUN ns/packet ==")
    for name in ("match", "miss", "ipv6"):
        print(f"{name:<14}{fmt(get(doc, 'prog_test_run_ns.' + name), digits=1):>10}")
    ctl = doc.get("control") or {}
    print()
    print("== control plane ==")
    for key in ("setups_per_s", "cycles_per_s", "p50_ms", "p99_ms", "p999_ms",
                "calls_at_ceiling", "setups_per_s_at_ceiling", "p99_ms_at_ceiling"):
        value = ctl.get(key)
        print(f"{key:<26}{fmt(value, digits=3) if isinstance(value, float) else fmt(value):>12}")
    two = ctl.get("two_relays") or {}
    if two:
        print(f"{'two relays: setups_per_s':<26}{fmt(two.get('setups_per_s')):>12}")
    mem = doc.get("memory") or {}
    print()
    print("== memory ==")
    for key, value in mem.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            print(f"{key:<34}{fmt(value):>14}")
    load = doc.get("load") or {}
    if load:
        print()
        print("== realistic load: first call count with loss > 0.1% ==")
        for name, value in (load.get("first_loss_calls") or {}).items():
            print(f"{name:<14}{fmt(value) if value is not None else 'none up to the largest N'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("fragments", nargs="*")
    args = ap.parse_args()
    doc = {}
    for path in args.fragments:
        try:
            with open(path) as f:
                merge(doc, json.load(f))
        except (OSError, ValueError) as e:
            print(f"summary: fragment {path} unusable: {e}", file=sys.stderr)
    doc["machine"] = machine()
    doc["command"] = args.command
    doc["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    doc["duration_s"] = args.seconds
    print_summary(doc)
    with open(args.out + ".tmp", "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
