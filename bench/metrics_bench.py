#!/usr/bin/env python3
"""CloudWatch metrics benchmark: starts the given `nimbus` binary on a free port with a
temporary data directory, then measures
  (a) PutMetricData ingestion: datums per second, batches of 1000 datums, sent by a few
      concurrent boto3 clients (query protocol), until --points datums are stored;
  (b) GetMetricData latency over those points: MetricStat queries (Average, p99) over a
      week of one metric, a day at one-minute periods, and a SUM(METRICS()) expression
      over ten metrics, each run --repeat times (median and p95).
Prints the figures; there is no pass/fail threshold.

Usage: bench/metrics_bench.py BUILD/nimbus [--points 1000000] [--metrics 100]
                              [--clients 4] [--repeat 20] [--keep]
Needs: python3 with boto3 (Debian's python3-boto3)."""
import argparse
import concurrent.futures
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import time

import benchlib

NAMESPACE = "Bench/Metrics"


def client(port):
    return benchlib.client("cloudwatch", port, max_pool_connections=4)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--metrics", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="nimbus-metrics-bench-")
    proc, log, port = benchlib.start_server(os.path.abspath(args.binary), data_dir,
                                            env_extra={"NIMBUS_LOG_LEVEL": "warn"})
    try:
        run(port, args)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        if args.keep:
            print(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def run(port, args):
    now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    minutes = -(-args.points // args.metrics)  # per metric, one datum per minute
    if minutes > 13 * 24 * 60:
        sys.exit("too many points per metric: CloudWatch keeps PutMetricData within two "
                 "weeks; raise --metrics")
    first = now - datetime.timedelta(minutes=minutes)

    # Batches of 1000 datums: a run of minutes for a run of metrics, built up front so the
    # timing measures the requests.
    datums = ((m, k) for k in range(minutes) for m in range(args.metrics))
    batches, batch = [], []
    for n, (m, k) in enumerate(datums):
        if n >= args.points:
            break
        batch.append({"MetricName": "Latency",
                      "Dimensions": [{"Name": "Host", "Value": f"host-{m:04d}"}],
                      "Timestamp": first + datetime.timedelta(minutes=k),
                      "Value": float((m * 7 + k * 13) % 1000 + 1), "Unit": "Milliseconds"})
        if len(batch) == 1000:
            batches.append(batch)
            batch = []
    if batch:
        batches.append(batch)

    clients = [client(port) for _ in range(args.clients)]
    latencies = []

    def send(i):
        started = time.perf_counter()
        clients[i % len(clients)].put_metric_data(Namespace=NAMESPACE, MetricData=batches[i])
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(send, range(len(batches))))
    elapsed = time.perf_counter() - started
    total = sum(len(b) for b in batches)
    print(f"PutMetricData: {total:,} datums in {len(batches):,} batches of <=1000 over "
          f"{args.metrics} metrics, {args.clients} clients")
    print(f"  ingestion          {total / elapsed:12,.0f} datums/s   ({elapsed:.1f} s)")
    print(f"  batch latency      median {statistics.median(latencies) * 1000:8.1f} ms   "
          f"p95 {percentile(latencies, 0.95) * 1000:8.1f} ms")

    cw = clients[0]
    week = max(first, now - datetime.timedelta(days=7))

    def stat_query(host, period, stat, qid="m1", return_data=True):
        return {"Id": qid, "ReturnData": return_data, "MetricStat": {
            "Metric": {"Namespace": NAMESPACE, "MetricName": "Latency",
                       "Dimensions": [{"Name": "Host", "Value": f"host-{host:04d}"}]},
            "Period": period, "Stat": stat}}

    cases = [
        ("1 metric, 1 week, period 1 h, Average",
         [stat_query(0, 3600, "Average")], week),
        ("1 metric, 1 week, period 1 h, p99",
         [stat_query(0, 3600, "p99")], week),
        ("1 metric, 1 day, period 1 min, Sum",
         [stat_query(1, 60, "Sum")], now - datetime.timedelta(days=1)),
        ("SUM(METRICS()) of 10 metrics, 1 week, period 1 h",
         [stat_query(h, 3600, "Sum", f"m{h}", False) for h in range(min(10, args.metrics))] +
         [{"Id": "total", "Expression": "SUM(METRICS())"}], week),
    ]
    print(f"GetMetricData over {total:,} stored points ({args.repeat} runs each)")
    for label, queries, start in cases:
        times, points = [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = cw.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=now,
                                     ScanBy="TimestampAscending")
            times.append(time.perf_counter() - t0)
            points = sum(len(r["Values"]) for r in out["MetricDataResults"])
        print(f"  {label:50s} median {statistics.median(times) * 1000:8.1f} ms   "
              f"p95 {percentile(times, 0.95) * 1000:8.1f} ms   ({points} datapoints)")


if __name__ == "__main__":
    main()
