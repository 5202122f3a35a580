"""Cost of one tapis_agent.token() call inside one interpreter, against
reading the token from a connect_tapis token file, measured in the same
run, interleaved A B A B; and running tapis-token in a subprocess.

    TAPIS_AGENT_BIN=bin /usr/bin/python3 -B contrib/python/tests/bench_client.py [--rounds N] [--calls N] [--json]

It starts the real fake tenant and agent (see harness.py), logs in, writes
the token file {"access_token", "expires_at"} as the agent's token_file
sink does, then times rounds of calls. It prints the medians per call with
min-max over the rounds, and the ratio.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import harness

import tapis_agent


def per_call(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    w = harness.World().start()
    try:
        os.environ["TAPIS_AGENT_SOCK"] = w.sock
        info = tapis_agent.token_info()
        path = os.path.join(w.dir, "tapis_tokens.json")
        with open(path, "w") as f:
            json.dump({"access_token": info["access_token"], "expires_at": info["expires_at"]}, f)

        def from_agent():
            tapis_agent.token()

        def from_file():
            # What a notebook reading a token file does each time.
            with open(path) as f:
                json.load(f)["access_token"]

        helper = [w.path("tapis-token")]
        env = w.env()

        def from_helper():
            # What a notebook calling the helper does: a process per token.
            subprocess.run(helper, env=env, stdout=subprocess.PIPE, check=True)

        for fn in (from_agent, from_file, from_helper):  # warm up
            per_call(fn, 5)
        agent, file, proc = [], [], []
        for _ in range(args.rounds):
            agent.append(per_call(from_agent, args.calls))
            file.append(per_call(from_file, args.calls))
            proc.append(per_call(from_helper, max(1, args.calls // 20)))
    finally:
        w.stop()

    res = {
        "python": sys.version.split()[0],
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "agent_us": [round(statistics.median(agent) * 1e6, 1), round(min(agent) * 1e6, 1), round(max(agent) * 1e6, 1)],
        "file_us": [round(statistics.median(file) * 1e6, 1), round(min(file) * 1e6, 1), round(max(file) * 1e6, 1)],
        "helper_us": [round(statistics.median(proc) * 1e6, 1), round(min(proc) * 1e6, 1), round(max(proc) * 1e6, 1)],
        "ratio": round(statistics.median(agent) / statistics.median(file), 1),
    }
    if args.json:
        print(json.dumps(res))
        return
    print("tapis_agent.token(), one connection per call: %.1f µs (%.1f–%.1f)" % tuple(res["agent_us"]))
    print("reading a connect_tapis token file:           %.1f µs (%.1f–%.1f)" % tuple(res["file_us"]))
    print("tapis-token in a subprocess, for comparison: %.1f µs (%.1f–%.1f)" % tuple(res["helper_us"]))
    print("ratio agent/file: %.1f× (medians of %d rounds of %d calls, Python %s)" % (res["ratio"], args.rounds, args.calls, res["python"]))


if __name__ == "__main__":
    main()
