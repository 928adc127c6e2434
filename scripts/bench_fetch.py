"""Workers' S3 reads: objects/s of fetched_batches (a bounded thread pool) against sequential GETs,
on moto's S3 server on 127.0.0.1, with and without an added per-request latency (a loopback proxy
that sleeps before forwarding, standing in for S3's ~20 ms small-object GET latency).

    .venv/bin/python scripts/bench_fetch.py --objects 10000 --latency-ms 20
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import multiprocessing
import os
import socket
import subprocess
import sys
import time

import pyarrow as pa

REPO_LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")
sys.path.insert(0, REPO_LIB)

from sparkprep.ingest.fetch import FetchSettings, fetched_batches  # noqa


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DelayProxy(http.server.ThreadingHTTPServer):
    """127.0.0.1 proxy to the S3 server that waits `delay` seconds before each request."""

    daemon_threads = True

    def __init__(self, target_port: int, delay: float, port: int = 0):
        self.target_port, self.delay = target_port, delay
        super().__init__(("127.0.0.1", port), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _forward(self):
        time.sleep(self.server.delay)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.target_port, timeout=60)
        upstream.request(self.command, self.path, body=body or None,
                         headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_HEAD = do_POST = _forward  # noqa: N815

    def log_message(self, *args):
        pass


class LatencyS3(http.server.ThreadingHTTPServer):
    """A minimal S3 GET endpoint on 127.0.0.1: any key is `size` bytes, after `delay` seconds. Next to
    nothing per request on the CPU, so it shows what concurrency does with latency alone."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, size: int, delay: float, port: int = 0):
        self.body, self.delay = os.urandom(size), delay
        super().__init__(("127.0.0.1", port), _LatencyHandler)


class _LatencyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall between them

    def do_GET(self, body: bool = True):  # noqa: N802
        time.sleep(self.server.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.send_header("ETag", '"0"')
        self.send_header("Last-Modified", "Sun, 01 Nov 2026 00:00:00 GMT")
        self.end_headers()
        if body:
            self.wfile.write(self.server.body)

    def do_HEAD(self):  # noqa: N802 - pyarrow's S3FileSystem asks for the size first
        self.do_GET(body=False)

    def log_message(self, *args):
        pass


def serve(server_class, args, port: int) -> None:
    """Run a server class on 127.0.0.1:port (the target of a process of its own)."""
    server_class(*args, port=port).serve_forever()


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def put_objects(endpoint: str, count: int, size: int) -> list:
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="bench")
    keys = [f"obj/{i:06d}.bin" for i in range(count)]
    body = os.urandom(size)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket="bench", Key=k, Body=body), keys))
    return [f"s3://bench/{k}" for k in keys]


def sequential(endpoint: str, uris: list) -> float:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    start = time.perf_counter()
    for uri in uris:
        client.get_object(Bucket="bench", Key=uri.split("/", 3)[3])["Body"].read()
    return len(uris) / (time.perf_counter() - start)


def pooled(endpoint: str, uris: list, size: int, concurrency: int) -> float:
    settings = FetchSettings(concurrency=concurrency, endpoint=endpoint)
    batches = [pa.RecordBatch.from_pydict({"uri": uris[i:i + 1000], "size": [size] * len(uris[i:i + 1000])})
               for i in range(0, len(uris), 1000)]
    start = time.perf_counter()
    got = sum(b.num_rows for b in fetched_batches(iter(batches), settings))
    assert got == len(uris)
    return len(uris) / (time.perf_counter() - start)


def pooled_pyarrow(endpoint: str, uris: list, concurrency: int) -> float:
    """objects/s of pyarrow's S3FileSystem (C++, the GIL released) reading in a thread pool: the
    alternative reader. Its Python binding asks for each object's size first: a HEAD and a GET."""
    from concurrent.futures import ThreadPoolExecutor

    from pyarrow import fs

    s3 = fs.S3FileSystem(endpoint_override=endpoint.split("://", 1)[1], scheme="http", region="us-east-1")

    def get(uri: str) -> bytes:
        with s3.open_input_stream(uri.split("://", 1)[1]) as stream:
            return stream.read()
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        assert sum(1 for _ in pool.map(get, uris)) == len(uris)
    return len(uris) / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", default="1,8,32,64")
    args = parser.parse_args(argv)
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})
    # Servers run in processes of their own: in this one they would share the GIL with the fetching
    # threads, and measure that contention instead of the fetcher.
    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port)
    direct = f"http://127.0.0.1:{port}"
    uris = put_objects(direct, args.objects, args.size)
    proxy_port = free_port()
    proxy = multiprocessing.Process(target=serve, args=(DelayProxy, (port, args.latency_ms / 1000), proxy_port),
                                    daemon=True)
    proxy.start()
    wait_for(proxy_port)
    delayed = f"http://127.0.0.1:{proxy_port}"
    few = uris[: max(200, args.objects // 20)]  # sequential GETs through the delay: a sample is enough
    print(f"{args.objects} objects of {args.size} bytes on moto (127.0.0.1)")
    for name, endpoint, sample in (("direct", direct, uris), (f"+{args.latency_ms:g} ms per request", delayed, few)):
        base = sequential(endpoint, sample)
        line = [f"{name}: sequential {base:,.0f} objects/s"]
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            rate = pooled(endpoint, uris if endpoint == direct else few * 1, args.size, concurrency)
            line.append(f"{concurrency} threads {rate:,.0f}/s ({rate / base:.1f}x)")
        print("; ".join(line))
    moto.terminate()
    proxy.terminate()
    latency_port = free_port()
    latency = multiprocessing.Process(target=serve, args=(LatencyS3, (args.size, args.latency_ms / 1000), latency_port),
                                      daemon=True)
    latency.start()
    wait_for(latency_port)
    endpoint = f"http://127.0.0.1:{latency_port}"
    sample = uris[: min(len(uris), 2000)]
    base = sequential(endpoint, sample[:200])
    line = [f"a minimal server, +{args.latency_ms:g} ms per GET: sequential {base:,.0f} objects/s"]
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        rate = pooled(endpoint, sample, args.size, concurrency)
        line.append(f"{concurrency} threads {rate:,.0f}/s ({rate / base:.1f}x)")
    print("; ".join(line))
    line = ["the same server, pyarrow's S3FileSystem (a HEAD and a GET per object)"]
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        rate = pooled_pyarrow(endpoint, sample, concurrency)
        line.append(f"{concurrency} threads {rate:,.0f}/s ({rate / base:.1f}x)")
    print("; ".join(line))
    latency.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
