"""sparkprep.online without Spark: loading recipes, bad input, the Object Lambda round trip through
boto3 against a loopback server, the HTTP endpoint against moto, and the Lambda's imports."""

import base64
import io
import json
import os
import subprocess
import sys
import threading

import loopback_s3
import numpy as np
import pytest
from PIL import Image
from images import flat, jpeg, photo

from sparkprep.online import BadImage, RecipeError, load_transform, object_lambda, serve, store
from sparkprep.online.http import asgi_app, function_url_handler
from sparkprep.preprocess.augment import AugmentSpec
from sparkprep.preprocess.transform import RECIPE_VERSION, TransformSpec, transform_sample

SPEC = TransformSpec(size=(32, 32), augment=AugmentSpec(hflip=True, crop=0.5), seed="3")


@pytest.fixture(scope="module")
def corpus(make_sample, tmp_path_factory):
    """make_sample's odd and bad files, plus a 1 MP photo (decoded at 1/8 DCT scale for 32 px)."""
    root = tmp_path_factory.mktemp("corpus")
    make_sample.add_special_files(str(root))
    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    files["photo.jpg"] = photo_jpeg()
    return files


def photo_jpeg(size=(1155, 866)) -> bytes:
    """A ~1 MP JPEG of a real photo (scikit-image's chelsea, resized)."""
    return jpeg(photo("chelsea").resize(size))


def test_online_bytes_are_the_offline_rows_for_originals_and_copies(corpus):
    t = load_transform(SPEC.record())
    images = {name: data for name, data in corpus.items() if name.endswith((".jpg", ".JPG", ".png", ".gif"))
              and "bad" not in name}
    assert len(images) >= 6
    for name, data in images.items():
        offline = transform_sample(data, name, 3, SPEC)
        assert t(data) == offline[0].image and t.output(data) == offline[0], name
        assert [t.augmented(data, name, i) for i in range(4)] == [o.image for o in offline], name
        assert transform_sample(data, name, 0, SPEC)[0] == offline[0]  # the original ignores --copies


def test_bad_input_is_refused_with_the_quarantine_status(corpus):
    t = load_transform(SPEC)
    for name, status in (("CXR/p_bad_truncated.jpeg", "corrupt"), ("HeadCT/p_bad_html.jpg", "invalid"),
                         ("ChestCT/p_bad_bomb.png", "decompression_bomb"), ("Hand/p_bad_empty.jpeg", "empty")):
        with pytest.raises(BadImage) as refused:
            t(corpus[name])
        assert refused.value.status == status and refused.value.reason, name
    small = load_transform(SPEC, max_pixels=100_000)  # the 1 MP photo is a bomb under a 0.1 MP limit
    with pytest.raises(BadImage, match="decompression_bomb"):
        small(corpus["photo.jpg"])
    assert t(corpus["photo.jpg"])  # the limit belongs to the transform, not the process


def test_recipes_are_checked_for_digest_version_and_fields(tmp_path):
    record = SPEC.record()
    assert load_transform(json.dumps(record)).spec == SPEC
    with pytest.raises(RecipeError, match=f"records digest 0000000000000000, but its fields hash to {SPEC.digest()}"):
        load_transform({**record, "digest": "0" * 16})
    with pytest.raises(RecipeError, match=f"version {RECIPE_VERSION + 1}, written by a newer sparkprep"):
        load_transform({**SPEC.as_dict(), "version": RECIPE_VERSION + 1})
    with pytest.raises(RecipeError, match="fields this sparkprep does not know \\(sharpen\\)"):
        load_transform({**SPEC.as_dict(), "sharpen": 1})
    with pytest.raises(RecipeError, match=f"processed with recipe {SPEC.digest()}, not the asked abc"):
        load_transform(record, digest="abc")
    missing = tmp_path / "nowhere"
    with pytest.raises(RecipeError, match=f"{missing}: no such table"):
        load_transform(str(missing))
    (tmp_path / "spec.json").write_text("{not json")
    with pytest.raises(RecipeError, match="spec.json: not JSON"):
        load_transform(str(tmp_path / "spec.json"))
    split_table = tmp_path / "split"
    split_table.mkdir()
    (split_table / "_run_report.json").write_text(json.dumps({"job": "split", "config": {}}))
    with pytest.raises(RecipeError, match="jobs/split.py records no transform"):
        load_transform(str(split_table))
    report = tmp_path / "processed"
    report.mkdir()
    (report / "_run_report.json").write_text(json.dumps({"job": "preprocess", "config": {"max_pixels": 1234},
                                                          "transform": record, "versions": {"pillow": "0.1"}}))
    with pytest.warns(UserWarning, match="processed with Pillow 0.1"):
        assert load_transform(str(report)).max_pixels == 1234


def test_the_pil_adapter_is_the_recipe_on_decoded_images(corpus):
    """for_pil() on a decoded image gives the pixels of the recipe on the file's bytes (draft off); the real
    torchvision Compose around it is tested with torchvision itself (tests/clients, `make test-clients`)."""
    spec = TransformSpec(size=(32, 32), draft=False)
    t = load_transform(spec)
    for name in ("CXR/p_cmyk.jpg", "Hand/p_exif_rotated.JPG", "Hand/p_palette_alpha.png", "photo.jpg"):
        adapted = t.for_pil()(Image.open(io.BytesIO(corpus[name])))
        assert np.array_equal(np.asarray(adapted), np.asarray(t.to_image(corpus[name]))), name
    assert "torch" not in sys.modules
    assert repr(t.for_pil()).startswith(f"SparkprepTransform(digest={spec.digest()}")


def test_pil_loader_gives_the_pixels_a_table_reader_decodes(corpus, tmp_path):
    t = load_transform(SPEC)
    path = tmp_path / "photo.jpg"
    path.write_bytes(corpus["photo.jpg"])
    loaded = t.pil_loader(str(path))
    assert np.array_equal(np.asarray(loaded), np.asarray(Image.open(io.BytesIO(t(corpus["photo.jpg"])))))


def test_query_overrides_use_the_cli_parsers_and_need_permission():
    settings = serve.Settings(load_transform(SPEC), allow_overrides=True)
    assert serve.requested(settings, {"size": ["16x8"], "mode": ["L"], "versionId": ["3"]}).spec.size == (16, 8)
    assert serve.requested(settings, {"X-Amz-Signature": ["x"]}).spec == SPEC
    for query, message in (({"size": ["0"]}, "--size: expected N or WIDTHxHEIGHT"),
                           ({"mode": ["CMYK"]}, "--mode: expected one of RGB, L, keep"),
                           ({"encode": ["gif"]}, "--encode: expected jpeg"),
                           ({"szie": ["1"]}, "szie: expected a transform parameter"),
                           ({"size": ["1", "2"]}, "size: expected one value")):
        with pytest.raises(ValueError, match=message):
            serve.requested(settings, query)
    with pytest.raises(PermissionError, match="overrides \\(size\\) are not allowed"):
        serve.requested(serve.Settings(settings.transform), {"size": ["16"]})


@pytest.fixture()
def loopback(corpus, monkeypatch):
    server = loopback_s3.LoopbackS3({"photo.jpg": corpus["photo.jpg"], "bad.jpg": corpus["CXR/p_bad_truncated.jpeg"]})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", server.url)
    yield server
    server.shutdown()
    server.server_close()


def object_lambda_event(server, name, query="", payload=None):
    payload = payload if payload is not None else json.dumps({"transform": SPEC.record(), "allow_overrides": True})
    return loopback_s3.object_lambda_event(server, name, query, payload)


def test_object_lambda_round_trip_through_boto3(loopback, corpus):
    t = load_transform(SPEC)
    cases = [("photo.jpg", "", None, 200), ("photo.jpg", "?size=16&mode=L", None, 200),
             ("missing.jpg", "", None, 404), ("bad.jpg", "", None, 422), ("photo.jpg", "?size=huge", None, 400),
             ("photo.jpg", "?size=16", json.dumps({"transform": SPEC.record()}), 403),
             ("photo.jpg", "", json.dumps({"transform": "/no/such/table"}), 500),
             ("photo.jpg", "?partNumber=1", None, 501)]
    for name, query, payload, status in cases:
        assert object_lambda.handler(object_lambda_event(loopback, name, query, payload)) == {"status_code": status}
    written = loopback.responses
    assert [w["path"] for w in written] == ["/WriteGetObjectResponse"] * len(cases)
    assert all(w["headers"]["x-amz-request-route"] == "io-route-1" and w["headers"]["x-amz-request-token"]
               == "token-1" for w in written)
    assert [int(w["headers"]["x-amz-fwd-status"]) for w in written] == [c[3] for c in cases]
    ok, small = written[0], written[1]
    assert ok["body"] == t(corpus["photo.jpg"])
    assert ok["headers"]["x-amz-fwd-header-content-type"] == "image/jpeg"
    assert ok["headers"]["x-amz-meta-sparkprep-transform"] == SPEC.digest()
    assert Image.open(io.BytesIO(small["body"])).size == (16, 16) and Image.open(io.BytesIO(small["body"])).mode == "L"
    errors = {c[3]: (w["headers"]["x-amz-fwd-error-code"], w["headers"]["x-amz-fwd-error-message"])
              for c, w in zip(cases[2:], written[2:])}
    assert errors[404] == ("NoSuchKey", "The specified key does not exist.")
    # the same status and reason as the offline quarantine
    assert errors[422] == ("UnprocessableEntity", "corrupt: truncated: the JPEG ends without its end-of-image marker "
                                                  "(FFD9)")
    assert errors[400][1].startswith("--size: expected N or WIDTHxHEIGHT")
    assert errors[403][0] == "AccessDenied" and "not allowed" in errors[403][1]
    # a broken configuration is logged; the caller gets a request id, not the detail
    assert errors[500][0] == "InvalidConfiguration" and "/no/such/table" not in errors[500][1]
    assert "request id" in errors[500][1]
    assert errors[501][0] == "NotImplemented"


@pytest.fixture()
def bucket(s3_endpoint, monkeypatch, corpus):
    """A moto bucket with two originals and a processed table's run report; the endpoint's environment."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="online")
    client.put_object(Bucket="online", Key="raw/photo.jpg", Body=corpus["photo.jpg"])
    client.put_object(Bucket="online", Key="raw/bad.jpg", Body=corpus["CXR/p_bad_truncated.jpeg"])
    report = {"job": "preprocess", "config": {}, "transform": SPEC.record()}
    client.put_object(Bucket="online", Key="processed/_run_report.json", Body=json.dumps(report).encode())
    for name, value in (("AWS_ENDPOINT_URL_S3", s3_endpoint), ("SPARKPREP_TRANSFORM", "s3://online/processed"),
                        ("SPARKPREP_BUCKET", "online"), ("SPARKPREP_PREFIX", "raw"),
                        ("SPARKPREP_ALLOW_OVERRIDES", "true")):
        monkeypatch.setenv(name, value)
    return client


def test_function_url_handler_serves_the_bucket_through_the_table_recipe(bucket, corpus):
    def get(path, query=""):
        answer = function_url_handler({"rawPath": path, "rawQueryString": query, "version": "2.0",
                                       "requestContext": {"http": {"method": "GET"}}})
        return answer["statusCode"], answer["headers"], base64.b64decode(answer["body"])

    status, headers, body = get("/photo.jpg")
    assert (status, headers["content-type"]) == (200, "image/jpeg")
    assert body == load_transform(SPEC)(corpus["photo.jpg"])
    assert get("/photo.jpg", "size=20x10")[2] == load_transform(SPEC).with_overrides({"size": "20x10"})(
        corpus["photo.jpg"])
    assert get("/missing.jpg")[0] == 404
    status, headers, body = get("/bad.jpg")
    assert status == 422 and json.loads(body)["message"].startswith("corrupt: ")
    assert get("/photo.jpg", "mode=P")[0] == 400
    rest = function_url_handler({"path": "/photo.jpg", "httpMethod": "GET", "queryStringParameters": {"size": "8"}})
    assert Image.open(io.BytesIO(base64.b64decode(rest["body"]))).size == (8, 8)  # API Gateway REST payload


def test_asgi_app_serves_the_same_bytes(bucket, corpus):
    from starlette.testclient import TestClient

    with TestClient(asgi_app()) as client:
        ok = client.get("/photo.jpg")
        assert ok.status_code == 200 and ok.content == load_transform(SPEC)(corpus["photo.jpg"])
        assert ok.headers["x-sparkprep-transform"] == SPEC.digest()
        assert client.get("/photo.jpg", params={"size": "12"}).status_code == 200
        assert client.get("/nothing.jpg").status_code == 404
        bad = client.get("/bad.jpg")
        assert bad.status_code == 422 and bad.json()["error"] == "UnprocessableEntity"
        assert client.get("/photo.jpg", params={"resample": "cubic"}).status_code == 400


def test_store_reads_local_and_s3_and_refuses_what_is_too_large(bucket, tmp_path):
    (tmp_path / "a.bin").write_bytes(b"12345")
    assert store.read(str(tmp_path / "a.bin")) == b"12345" and store.read_tail(str(tmp_path / "a.bin"), 2) == b"45"
    with pytest.raises(store.TooLarge):
        store.read(str(tmp_path / "a.bin"), max_bytes=4)
    with pytest.raises(store.Missing):
        store.read(str(tmp_path / "b.bin"))
    assert store.list_names("s3://online/") == ["processed", "raw"]
    assert store.list_names("s3://online/raw") == ["bad.jpg", "photo.jpg"]
    with pytest.raises(store.TooLarge):
        store.read("s3://online/raw/photo.jpg", max_bytes=100)


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("pyarrow", "pyspark", "pandas", "torch"):
            raise ImportError("not in a Lambda: " + name)
sys.meta_path.insert(0, Block())
"""


def test_the_online_modules_need_neither_pyspark_nor_pyarrow(corpus, tmp_path):
    (tmp_path / "photo.jpg").write_bytes(corpus["photo.jpg"])
    script = BLOCKER + f"""
import sparkprep.online.object_lambda, sparkprep.online.http
from sparkprep.online import load_transform
from sparkprep.preprocess.transform import TransformSpec
t = load_transform(TransformSpec(size=(32, 32)))
sys.stdout.buffer.write(t(open({str(tmp_path / 'photo.jpg')!r}, "rb").read()))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True, env={**os.environ})
    assert out.stdout == load_transform(TransformSpec(size=(32, 32)))(corpus["photo.jpg"])


def test_an_unreachable_s3_source_is_named_in_the_error(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(RecipeError, match="s3://nowhere/processed: cannot be read"):
        load_transform("s3://nowhere/processed")



def png_bytes(size, colour="red", cut=0):
    data = flat(size, colour, "PNG")
    return data[:len(data) - cut] if cut else data


def gif_bytes():
    buffer = io.BytesIO()
    Image.new("P", (8, 8), 3).save(buffer, "GIF")
    return buffer.getvalue()


def test_truncated_files_are_refused_online_as_offline_quarantines_them():
    """A PNG without IEND and a GIF without its trailer were transformed online (200) and quarantined
    offline as corrupt: online runs the same end check, with the same status and reason."""
    from sparkprep.images.probe import probe_image

    t = load_transform(SPEC)
    for data in (png_bytes((8, 8), cut=12), gif_bytes()[:-1]):
        offline = probe_image(data)
        assert offline.status == "corrupt"
        with pytest.raises(BadImage) as refused:
            t(data)
        assert (refused.value.status, refused.value.reason) == (offline.status, offline.error)
        answer = serve.reply(serve.Settings(t), lambda limit, data=data: data, {})
        assert answer.status == 422 and answer.message == f"corrupt: {offline.error}"


def test_the_pixel_limit_holds_per_call_under_threads():
    """Two transforms with different limits, in many threads at once: each keeps its own limit (a
    process-wide Image.MAX_IMAGE_PIXELS and warnings filter, changed per call, raced)."""
    from concurrent.futures import ThreadPoolExecutor

    data = png_bytes((400, 300))  # 120,000 pixels
    strict, loose = load_transform(SPEC, max_pixels=100_000), load_transform(SPEC, max_pixels=10_000_000)

    def one(i):
        transform = strict if i % 2 else loose
        try:
            transform(data)
            return "ok"
        except BadImage as bad:
            return bad.status

    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can: the old per-call global lost ~7%
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(one, range(400)))
    finally:
        sys.setswitchinterval(interval)
    assert results == ["ok", "decompression_bomb"] * 200
    import PIL.Image

    assert PIL.Image.MAX_IMAGE_PIXELS >= 10_000_000  # only ever raised, never lowered per call


def test_overrides_cannot_ask_for_an_output_past_the_endpoints_limits():
    """A 69-byte PNG asked for ?size=8192&resize=exact&resample=lanczos&encode=raw made 201 MB."""
    tiny = png_bytes((1, 1))
    settings = serve.Settings(load_transform(SPEC), allow_overrides=True)
    fetched = []
    big = serve.reply(settings, lambda limit: fetched.append(1) or tiny,
                      {"size": ["8192"], "resize": ["exact"], "resample": ["lanczos"], "encode": ["raw"]})
    assert big.status == 400 and "over this endpoint's limit of 4194304 (max_output_pixels)" in big.message
    assert not fetched  # refused before the original is even read
    small_bytes = serve.Settings(load_transform(SPEC), allow_overrides=True, max_output_bytes=1 << 20)
    raw = serve.reply(small_bytes, lambda limit: tiny, {"size": ["1024"], "encode": ["raw"]})
    assert raw.status == 400 and "max_output_bytes" in raw.message
    assert serve.reply(settings, lambda limit: tiny, {"size": ["64"]}).status == 200
    own = serve.Settings(load_transform(TransformSpec(size=(3000, 3000))), max_output_pixels=100)
    assert serve.reply(own, lambda limit: tiny, {}).status == 200  # the recipe's own size is always allowed
    tight = serve.Settings(load_transform(SPEC), max_output_bytes=50)
    assert serve.reply(tight, lambda limit: png_bytes((64, 64), "blue"), {}).status == 413
    configured = serve.settings_from(json.dumps({"transform": SPEC.record(), "max_output_pixels": 10,
                                                 "max_output_bytes": 99, "max_concurrent": 2}))
    assert (configured.max_output_pixels, configured.max_output_bytes, configured.max_concurrent) == (10, 99, 2)


def test_the_asgi_app_bounds_concurrent_transforms_and_sheds_the_excess(corpus):
    import asyncio

    import httpx2 as httpx  # starlette's own test client's package (requirements-dev.txt)

    settings = serve.Settings(load_transform(SPEC), bucket="b", max_concurrent=2)
    running, peak, release = [0], [0], threading.Event()

    def slow(bucket, key, limit, version_id=None):
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        release.wait(10)
        running[0] -= 1
        return corpus["photo.jpg"]

    async def burst():
        transport = httpx.ASGITransport(app=asgi_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            requests = [asyncio.ensure_future(client.get(f"/k{i}.jpg")) for i in range(14)]
            await asyncio.sleep(0.5)
            release.set()
            return [r.status_code for r in await asyncio.gather(*requests)]

    original = store.get_object
    store.get_object = slow
    try:
        statuses = asyncio.run(burst())
    finally:
        store.get_object = original
    assert peak[0] == 2  # never more transforms at once than max_concurrent
    assert statuses.count(200) == 10 and statuses.count(503) == 4  # 2 running + 8 waiting; the rest shed


def test_http_endpoint_passes_version_id_refuses_parts_and_dot_segments(s3_endpoint, monkeypatch, corpus):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="versioned")
    client.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    old = client.put_object(Bucket="versioned", Key="raw/p.png", Body=png_bytes((40, 40), "red"))["VersionId"]
    client.put_object(Bucket="versioned", Key="raw/p.png", Body=png_bytes((40, 40), "lime"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    settings = serve.Settings(load_transform(TransformSpec(size=(8, 8), encode="png")), bucket="versioned",
                              prefix="raw")

    def colour(answer):
        assert answer.status == 200, answer.message
        return Image.open(io.BytesIO(answer.body)).convert("RGB").getpixel((4, 4))

    from sparkprep.online.http import object_reply

    assert colour(object_reply(settings, "p.png", {})) == (0, 255, 0)
    assert colour(object_reply(settings, "p.png", {"versionId": [old]})) == (255, 0, 0)  # the version asked
    assert object_reply(settings, "p.png", {"partNumber": ["1"]}).status == 501
    for key in ("../secret.png", "a/./p.png", "a/../../x", "."):
        assert object_reply(settings, key, {}).status == 400, key


def test_transient_fetch_failures_are_answers_and_short_bodies_are_errors(monkeypatch):
    """A slow presigned GET raised TimeoutError out of the Object Lambda handler; the Function URL
    handler raised EndpointConnectionError; a body shorter than its Content-Length was transformed."""
    import http.server
    import socket

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            if "slow" in self.path:
                import time

                time.sleep(3)
            body = png_bytes((8, 8))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + (50 if "short" in self.path else 0)))
            self.end_headers()
            self.wfile.write(body)
            if "short" in self.path:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(object_lambda, "FETCH_TIMEOUT", 0.5)
    settings = serve.Settings(load_transform(SPEC))
    try:
        slow = serve.reply(settings, lambda limit: object_lambda.fetch(f"{url}/slow.png", limit), {})
        short = serve.reply(settings, lambda limit: object_lambda.fetch(f"{url}/short.png", limit), {})
        fine = serve.reply(settings, lambda limit: object_lambda.fetch(f"{url}/fine.png", limit), {})
    finally:
        server.shutdown()
    assert (slow.status, slow.error_code) == (504, "GatewayTimeout")
    assert short.status == 502 and short.error_code == "BadGateway"
    assert fine.status == 200
    # the Function URL path, with nothing listening at the store's endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store._client.cache_clear()
    from sparkprep.online.http import object_reply

    gone = object_reply(serve.Settings(load_transform(SPEC), bucket="b"), "x.png", {})
    store._client.cache_clear()
    assert gone.status == 502 and gone.error_code == "BadGateway"


def test_a_broken_configuration_answers_a_generic_500_once_loaded_and_is_not_retried_per_request(
        monkeypatch, caplog):
    calls = []

    def failing(source, digest=None, max_pixels=None):
        calls.append(source)
        raise RecipeError("s3://internal-models-bucket/processed: cannot be read (ClientError: AccessDenied)")

    monkeypatch.setattr(serve, "load_transform", failing)
    serve._cached_settings.cache_clear()
    serve._FAILED.clear()
    env = {"SPARKPREP_TRANSFORM": "s3://internal-models-bucket/processed"}
    answers = [serve.settings_or_reply(None, env)[1] for _ in range(5)]
    assert len(calls) == 1  # loaded once; the failure is answered from memory for serve.FAILURE_TTL
    for answer in answers:
        assert answer.status == 500 and "internal-models-bucket" not in answer.message
        assert "AccessDenied" not in answer.body.decode() and answer.headers["x-sparkprep-request-id"]
    assert "internal-models-bucket" in caplog.text  # the operator's log has the detail
    serve._FAILED.clear()
