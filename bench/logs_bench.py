#!/usr/bin/env python3
"""CloudWatch Logs benchmark: PutLogEvents throughput of one `nimbus serve` through boto3.

Starts the server the way tests/integration/conftest.py does (port 0, a temp data dir,
fixed root keys), creates a log group and stream, and sends batches of events (1000 per
PutLogEvents by default, timestamps of now) from one client, then reads them all back
with GetLogEvents and scans them with FilterLogEvents. Prints events/s for each; there is
no threshold (no peer service is installed to compare against).

Usage: bench/logs_bench.py [BINARY] [--batches N] [--batch-size N] [--message-bytes N]
                           [--clients N] [--keep]
  BINARY           the nimbus binary (default: build/nimbus, or $NIMBUS_BINARY)
  --batches        PutLogEvents calls per client (default: 100)
  --batch-size     events per call (default: 1000)
  --message-bytes  bytes per message (default: 120)
  --clients        concurrent clients, one stream each (default: 1)
  --keep           keep the data dir and server log
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import benchlib
from benchlib import start_server



def client(port):
    return benchlib.client("logs", port)


def put_stream(logs, group, stream, batches, batch_size, message, errors):
    try:
        for b in range(batches):
            base = int(time.time() * 1000)
            events = [{"timestamp": base, "message": message} for _ in range(batch_size)]
            r = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            if "rejectedLogEventsInfo" in r:
                raise RuntimeError(f"events rejected: {r['rejectedLogEventsInfo']}")
    except Exception as e:  # reported by the main thread
        errors.append(e)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_binary = os.environ.get(
        "NIMBUS_BINARY", os.path.join(os.path.dirname(__file__), "..", "build", "nimbus"))
    parser.add_argument("binary", nargs="?", default=default_binary)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--message-bytes", type=int, default=120)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"logs_bench: {args.binary} is not an executable nimbus binary")

    data_dir = tempfile.mkdtemp(prefix="nimbus-logs-bench-")
    proc, log, port = start_server(args.binary, data_dir)
    try:
        logs = client(port)
        group = "/bench/logs"
        logs.create_log_group(logGroupName=group)
        streams = [f"stream-{i}" for i in range(args.clients)]
        for s in streams:
            logs.create_log_stream(logGroupName=group, logStreamName=s)
        message = ("INFO request served path=/v1/items status=200 "
                   + "x" * args.message_bytes)[:args.message_bytes]
        # Warm-up: connections, the first statements, the page cache.
        put_stream(logs, group, streams[0], 2, args.batch_size, message, [])

        errors = []
        clients = [client(port) for _ in streams]
        threads = [threading.Thread(target=put_stream,
                                    args=(c, group, s, args.batches, args.batch_size, message,
                                          errors)) for c, s in zip(clients, streams)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        put_seconds = time.perf_counter() - start
        if errors:
            sys.exit(f"logs_bench: PutLogEvents failed: {errors[0]}")
        total = args.batches * args.batch_size * args.clients

        # Read one stream back with GetLogEvents, following nextForwardToken.
        start = time.perf_counter()
        read, token = 0, None
        while True:
            kwargs = {"nextToken": token} if token else {"startFromHead": True}
            r = logs.get_log_events(logGroupName=group, logStreamName=streams[-1], **kwargs)
            read += len(r["events"])
            if r["nextForwardToken"] == token:
                break
            token = r["nextForwardToken"]
        get_seconds = time.perf_counter() - start

        # Scan the whole group with a pattern that matches nothing.
        start = time.perf_counter()
        scanned_pages, token = 0, None
        while True:
            kwargs = {"nextToken": token} if token else {}
            r = logs.filter_log_events(logGroupName=group, filterPattern="NEEDLE", **kwargs)
            scanned_pages += 1
            token = r.get("nextToken")
            if not token:
                break
        filter_seconds = time.perf_counter() - start
        stored = total + 2 * args.batch_size  # with the warm-up batches

        print(f"PutLogEvents:    {total} events in {put_seconds:.2f} s = "
              f"{total / put_seconds:,.0f} events/s "
              f"({total * args.message_bytes / put_seconds / 1e6:.1f} MB/s of messages; "
              f"{args.clients} client(s), {args.batch_size} events/batch, "
              f"{args.message_bytes} B/event)")
        print(f"GetLogEvents:    {read} events in {get_seconds:.2f} s = "
              f"{read / get_seconds:,.0f} events/s")
        print(f"FilterLogEvents: {stored} events scanned in {filter_seconds:.2f} s = "
              f"{stored / filter_seconds:,.0f} events/s ({scanned_pages} page(s))")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if args.keep:
            print(f"data and server log kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
