"""Manifest listings (S3 Inventory CSV, ORC, parquet; plain uri tables) and the workers' own fetch,
against moto's S3 server on 127.0.0.1."""

import gzip
import http.server
import io
import json
import threading

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from sparkprep.ingest.fetch import FetchSettings, fetch_one, fetched_batches
from sparkprep.ingest.inventory import listing_rows, parse_manifest, table_listing

MANIFEST = {"sourceBucket": "photos", "destinationBucket": "arn:aws:s3:::inventory", "version": "2016-11-30",
            "creationTimestamp": "1730419200000", "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag, IsDeleteMarker",
            "files": [{"key": "photos/cfg/data/a.csv.gz", "size": 120, "MD5checksum": "x"}]}


def test_manifest_json_names_the_inventory_files_and_their_columns():
    inventory = parse_manifest(json.dumps(MANIFEST), "s3://inventory/m.json")
    assert inventory.files == ("s3://inventory/photos/cfg/data/a.csv.gz",) and inventory.file_format == "CSV"
    assert inventory.columns == ("bucket", "key", "size", "lastmodifieddate", "etag", "isdeletemarker")
    with pytest.raises(ValueError, match="not an S3 Inventory manifest.json \\(no fileFormat"):
        parse_manifest(json.dumps({k: v for k, v in MANIFEST.items() if k != "fileFormat"}), "m.json")
    with pytest.raises(ValueError, match="fileFormat 'XML'"):
        parse_manifest(json.dumps({**MANIFEST, "fileFormat": "XML"}), "m.json")


def test_csv_inventory_keys_are_url_decoded_and_delete_markers_left_out():
    lines = ['"photos","cat%2Fa+b.jpg","10","2026-11-01T00:00:00.000Z","\\"e1\\"","false"',
             '"photos","x%2By.png","0","2026-11-01T00:00:00.000Z","e2","false"',
             '"photos","gone.jpg","","2026-11-01T00:00:00.000Z","","true"']
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    rows = listing_rows(data, parse_manifest(json.dumps(MANIFEST), "m.json")).to_pylist()
    assert [(r["uri"], r["size"]) for r in rows] == [("s3://photos/cat/a b.jpg", 10), ("s3://photos/x+y.png", 0)]
    assert rows[0]["last_modified"] == "2026-11-01T00:00:00.000Z"


@pytest.mark.parametrize("fmt", ["Parquet", "ORC"])
def test_parquet_and_orc_inventories_keep_keys_as_stored(fmt):
    table = pa.table({"bucket": ["photos", "photos"], "key": ["a b+c.jpg", "old.jpg"], "size": [5, 6],
                      "last_modified_date": ["t1", "t2"], "e_tag": ["e1", "e2"], "is_latest": [True, False]})
    buffer = io.BytesIO()
    (pq.write_table if fmt == "Parquet" else orc.write_table)(table, buffer)
    inventory = parse_manifest(json.dumps({**MANIFEST, "fileFormat": fmt, "fileSchema": "message s3.inventory {}"}),
                               "m.json")
    rows = listing_rows(buffer.getvalue(), inventory).to_pylist()
    assert rows == [{"uri": "s3://photos/a b+c.jpg", "size": 5, "last_modified": "t1", "etag": "e1"}]


def test_a_plain_table_needs_only_uris():
    batch = pa.RecordBatch.from_pydict({"uri": ["s3://b/k"], "other": [1]})
    assert next(table_listing(iter([batch]))).to_pylist() == [
        {"uri": "s3://b/k", "size": None, "last_modified": None, "etag": None}]


@pytest.fixture()
def bucket(s3_endpoint):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="fetch")
    for i in range(40):
        client.put_object(Bucket="fetch", Key=f"k/{i:03d}.bin", Body=bytes([i]) * (i + 1))
    return FetchSettings(concurrency=8, max_file_bytes=30, endpoint=s3_endpoint)


def test_every_object_is_fetched_or_has_a_reason(bucket, tmp_path):
    (tmp_path / "local.bin").write_bytes(b"abc")
    assert fetch_one("s3://fetch/k/002.bin", 3, bucket) == ("s3://fetch/k/002.bin", 3, b"\x02" * 3, None, None)
    assert fetch_one("s3://fetch/k/002.bin", None, bucket)[2] == b"\x02" * 3  # size unknown: read, then known
    missing = fetch_one("s3://fetch/k/nope.bin", 3, bucket)
    assert missing[3:] == ("unreadable", "404 NoSuchKey: The specified key does not exist.")
    changed = fetch_one("s3://fetch/k/002.bin", 4, bucket)
    assert changed[2] is None and changed[3] == "unreadable" and "the listing says 4" in changed[4]
    assert fetch_one("s3://fetch/k/035.bin", 36, bucket)[2:] == (None, None, None)  # too large: not read
    assert fetch_one(str(tmp_path / "local.bin"), 3, bucket)[2] == b"abc"
    assert fetch_one(str(tmp_path / "none.bin"), 3, bucket)[3] == "unreadable"


def test_batches_keep_their_order_through_the_thread_pool(bucket):
    uris = [f"s3://fetch/k/{i:03d}.bin" for i in range(30)]
    batch = pa.RecordBatch.from_pydict({"uri": uris, "size": [i + 1 for i in range(30)]})
    out = next(fetched_batches(iter([batch]), bucket)).to_pylist()
    assert [r["path"] for r in out] == uris and all(r["content"] == bytes([i]) * (i + 1) for i, r in enumerate(out))


class Throttling(http.server.ThreadingHTTPServer):
    """127.0.0.1 S3 stand-in: GET /<bucket>/<key> answers 503 SlowDown `slow[key]` times, then the
    object; keys in `denied` get 403 AccessDenied. Counts the requests per key."""

    def __init__(self, objects, slow=(), denied=()):
        self.objects, self.slow, self.denied, self.requests = objects, dict(slow), set(denied), {}
        self.sent = {}  # body bytes the client took, per key
        super().__init__(("127.0.0.1", 0), ThrottlingHandler)


class ThrottlingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        key = self.path.split("?")[0].split("/", 2)[2]
        server = self.server
        server.requests[key] = server.requests.get(key, 0) + 1
        if key in server.denied:
            return self._error(403, "AccessDenied", "Access Denied")
        if server.slow.get(key, 0) > 0:
            server.slow[key] -= 1
            return self._error(503, "SlowDown", "Please reduce your request rate.")
        self._send(200, server.objects[key], key)

    def _error(self, status, code, message):
        self._send(status, f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
                   .encode())

    def _send(self, status, body, key=None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for start in range(0, len(body), 1 << 16):
                self.wfile.write(body[start:start + (1 << 16)])
                self.wfile.flush()
                if key is not None:
                    self.server.sent[key] = self.server.sent.get(key, 0) + len(body[start:start + (1 << 16)])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client closed the body unread

    def log_message(self, *args):
        pass


def test_throttling_is_retried_with_backoff_and_a_403_is_a_reason(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import time

    from botocore.retries.bucket import TokenBucket

    # botocore's backoff between attempts is recorded, not slept; its adaptive rate limiter's waits
    # (a token bucket refilled slowly after throttling) are skipped
    waits = []
    monkeypatch.setattr(time, "sleep", lambda seconds: waits.append(seconds))
    monkeypatch.setattr(TokenBucket, "_sleep_amount", lambda self, amount: 0)
    server = Throttling({"slow.bin": b"x" * 5, "never.bin": b"y"}, {"slow.bin": 2, "never.bin": 99}, {"secret.bin"})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = FetchSettings(concurrency=2, endpoint=f"http://127.0.0.1:{server.server_address[1]}",
                                 max_attempts=3)
        assert fetch_one("s3://b/slow.bin", 5, settings)[2:] == (b"x" * 5, None, None)
        assert server.requests["slow.bin"] == 3  # two 503 SlowDown answers, retried
        assert len([w for w in waits if w > 0]) >= 2, waits  # after a backoff each
        denied = fetch_one("s3://b/secret.bin", 5, settings)
        assert denied[3:] == ("unreadable", "403 AccessDenied: Access Denied") and server.requests["secret.bin"] == 1
        never = fetch_one("s3://b/never.bin", 1, settings)  # still throttled after 3 retries: a reason, no failure
        assert never[3] == "unreadable" and never[4].startswith("503 SlowDown") and server.requests["never.bin"] == 4
    finally:
        server.shutdown()


def test_an_object_over_the_limit_is_not_read_when_the_manifest_gives_no_size(monkeypatch, tmp_path):
    """A uri table without sizes: the GET's Content-Length decides, before the body is read."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    big = 20 << 20
    server = Throttling({"big.bin": b"z" * big, "small.bin": b"s" * 10})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = FetchSettings(concurrency=1, endpoint=f"http://127.0.0.1:{server.server_address[1]}",
                                 max_file_bytes=1 << 20)
        assert fetch_one("s3://b/big.bin", None, settings) == ("s3://b/big.bin", big, None, None, None)
        assert fetch_one("s3://b/small.bin", None, settings)[1:3] == (10, b"s" * 10)
        server.shutdown()  # the handler's writes end once the client has closed the connection
        assert server.sent.get("big.bin", 0) < big // 2, server.sent  # socket buffers took a little, no more
    finally:
        server.shutdown()
    (tmp_path / "big.bin").write_bytes(b"z" * (2 << 20))
    assert fetch_one(str(tmp_path / "big.bin"), None, settings)[1:] == (2 << 20, None, None, None)
