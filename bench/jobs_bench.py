#!/usr/bin/env python3
"""Job start latency: from the CreateProcessingJob call to the job's own first instruction.

Each job's entrypoint prints the time it starts (`date +%s.%N` inside the sandbox); the
latency is that time minus the moment the client sent CreateProcessingJob, so it covers the
API call, the controller, the scheduler, the executor, bubblewrap and the worker
supervisor. Also prints the time until DescribeProcessingJob shows Completed (polled every
50 ms) and the time for a burst of jobs to all complete. No threshold yet (issue 5).

Usage: bench/jobs_bench.py [BINARY] [--jobs N] [--burst N] [--keep]
"""
import argparse
import shutil
import signal
import statistics
import tempfile
import time
import uuid

from benchlib import DEFAULT_BINARY, client, start_server

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def request(name, command):
    return {
        "ProcessingJobName": name,
        "RoleArn": "arn:aws:iam::000000000000:role/bench",
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["sh", "-c", command]},
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": "ml.t3.medium", "VolumeSizeInGB": 1}},
    }


def wait_completed(sm, name, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"]
        if status in ("Completed", "Failed", "Stopped"):
            return status
        time.sleep(0.05)
    raise SystemExit(f"{name} did not finish")


def first_line(logs, name, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/ProcessingJobs",
                                                logStreamNamePrefix=name + "/")["logStreams"]
        except logs.exceptions.ResourceNotFoundException:
            streams = []
        if streams:
            events = logs.get_log_events(logGroupName="/aws/sagemaker/ProcessingJobs",
                                         logStreamName=streams[0]["logStreamName"],
                                         startFromHead=True)["events"]
            if events:
                return events[0]["message"]
        time.sleep(0.05)
    raise SystemExit(f"{name} logged nothing")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary", nargs="?", default=DEFAULT_BINARY)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="nimbus-jobs-bench-")
    proc, log, port = start_server(args.binary, data_dir)
    try:
        sm, logs = client("sagemaker", port), client("logs", port)
        start_latency, completed_latency = [], []
        for i in range(args.jobs):
            name = f"start-{i}-{uuid.uuid4().hex[:6]}"
            sent = time.time()
            sm.create_processing_job(**request(name, "date +%s.%N"))
            status = wait_completed(sm, name)
            completed_latency.append(time.time() - sent)
            if status != "Completed":
                raise SystemExit(f"{name} ended {status}")
            start_latency.append(float(first_line(logs, name)) - sent)

        burst = [f"burst-{i}-{uuid.uuid4().hex[:6]}" for i in range(args.burst)]
        began = time.time()
        for name in burst:
            sm.create_processing_job(**request(name, "true"))
        for name in burst:
            wait_completed(sm, name, timeout=300)
        burst_seconds = time.time() - began

        ms = lambda s: f"{s * 1000:8.1f} ms"
        print(f"job start latency (API call -> worker running), {args.jobs} sequential jobs:")
        print(f"  median {ms(statistics.median(start_latency))}   p90 "
              f"{ms(percentile(start_latency, 90))}   max {ms(max(start_latency))}")
        print("API call -> Describe shows Completed (50 ms polling):")
        print(f"  median {ms(statistics.median(completed_latency))}   p90 "
              f"{ms(percentile(completed_latency, 90))}")
        print(f"burst: {args.burst} jobs created at once, all Completed after "
              f"{burst_seconds:.2f} s ({args.burst / burst_seconds:.1f} jobs/s)")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
        if args.keep:
            print("data dir kept:", data_dir)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
