"""A loopback stand-in for S3 Object Lambda's two sides (moto has no WriteGetObjectResponse):
used by tests/unit/test_online.py and scripts/bench_online.py."""

import http.server


class LoopbackS3(http.server.ThreadingHTTPServer):
    """127.0.0.1 stand-in for both sides of S3 Object Lambda: the presigned GET of the original
    (GET /original/<name>) and the WriteGetObjectResponse API (POST /WriteGetObjectResponse)."""

    def __init__(self, objects):
        self.objects, self.responses = objects, []
        super().__init__(("127.0.0.1", 0), LoopbackHandler)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class LoopbackHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        name = self.path.split("?")[0][len("/original/"):]
        if name in self.server.objects:
            self._send(200, self.server.objects[name], "image/jpeg")
        else:
            self._send(404, b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>The specified key does "
                            b"not exist.</Message></Error>", "application/xml")

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.responses.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body})
        self._send(200, b"", "application/xml")

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def object_lambda_event(server, name, query, payload):
    """An S3 Object Lambda GetObject event, as the access point sends it."""
    return {"getObjectContext": {"inputS3Url": f"{server.url}/original/{name}?X-Amz-Signature=abc",
                                 "outputRoute": "io-route-1", "outputToken": "token-1"},
            "configuration": {"supportingAccessPointArn": "arn:aws:s3:us-east-1:1:accesspoint/ap",
                              "payload": payload},
            "userRequest": {"url": f"https://ol-ap.s3-object-lambda.us-east-1.amazonaws.com/{name}{query}",
                            "headers": {"Host": "ol-ap.s3-object-lambda.us-east-1.amazonaws.com"}},
            "protocolVersion": "1.00"}
