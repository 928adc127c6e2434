"""A plain HTTP transform endpoint: `GET /<key>?size=128&mode=L` returns the bucket's object
through the recorded recipe. The path where S3 Object Lambda is not available (new AWS accounts
since 7 November 2025).

- `function_url_handler`: a Lambda Function URL, or API Gateway (REST v1 or HTTP v2 payloads).
- `asgi_app()`: the same as an ASGI app (starlette, the `online` extra), e.g.
  `uvicorn --factory sparkprep.online.http:asgi_app --host 127.0.0.1`.

Configuration comes from the environment: $SPARKPREP_TRANSFORM (a processed table URI or a spec
JSON), $SPARKPREP_BUCKET (and $SPARKPREP_PREFIX), $SPARKPREP_ALLOW_OVERRIDES and the limits
(serve.settings_from).

`?versionId=` is passed to S3 (the version asked is the version served); `?partNumber=` is
refused (501): a transformed image has no parts. A key with a `.` or `..` segment is refused
(400): a store that normalises paths would serve an object outside the prefix.
"""

from __future__ import annotations

import base64
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import parse_qs, unquote

from sparkprep.online import serve, store


def object_reply(settings: serve.Settings, key: str, query: Mapping[str, List[str]]) -> serve.Reply:
    """GET <key> (at ?versionId=, when given) from the configured bucket through the recipe."""
    if not settings.bucket:
        return serve.Reply.internal(500, "InvalidConfiguration", "the endpoint's configuration is incomplete",
                                    "no bucket: set $SPARKPREP_BUCKET")
    key = key.lstrip("/")
    if not key:
        return serve.Reply.error(400, "InvalidArgument", "expected GET /<object key>")
    if any(segment in (".", "..") for segment in key.split("/")):
        return serve.Reply.error(400, "InvalidArgument", "the key has a '.' or '..' segment; expected a plain key")
    asked = {name.lower(): values for name, values in query.items()}
    if "partnumber" in asked:
        return serve.Reply.error(501, "NotImplemented", "a transformed image has no parts: GET it whole")
    versions = asked.get("versionid") or [None]
    if len(versions) != 1:
        return serve.Reply.error(400, "InvalidArgument", "versionId: expected one value")
    full = f"{settings.prefix}/{key}" if settings.prefix else key
    return serve.reply(settings, lambda limit: store.get_object(settings.bucket, full, limit,
                                                                version_id=versions[0]), query)


def function_url_handler(event: Dict[str, Any], context: Any = None) -> Dict[str, Any]:
    """Lambda Function URL / API Gateway proxy handler; the image is returned base64-encoded."""
    method = (event.get("requestContext", {}).get("http", {}).get("method") or event.get("httpMethod") or "GET")
    settings, failed = serve.settings_or_reply()
    if failed:
        answer = failed
    elif method.upper() not in ("GET", "HEAD"):
        answer = serve.Reply.error(405, "MethodNotAllowed", f"{method}: expected GET")
    else:
        path = event.get("rawPath") or event.get("path") or "/"
        answer = object_reply(settings, unquote(path), _query(event))
    headers = {"content-type": answer.content_type, **answer.headers}
    if answer.error_code:
        headers["x-sparkprep-error"] = answer.error_code
    return {"statusCode": answer.status, "headers": headers, "isBase64Encoded": True,
            "body": "" if method.upper() == "HEAD" else base64.b64encode(answer.body).decode("ascii")}


def _query(event: Mapping[str, Any]) -> Dict[str, List[str]]:
    if event.get("rawQueryString") is not None:  # Function URL and HTTP API (payload 2.0)
        return parse_qs(event["rawQueryString"], keep_blank_values=True)
    multi = event.get("multiValueQueryStringParameters")  # REST API (payload 1.0)
    if multi:
        return {name: list(values) for name, values in multi.items()}
    return {name: [value] for name, value in (event.get("queryStringParameters") or {}).items()}


def asgi_app(settings: Optional[serve.Settings] = None):
    """The endpoint as a starlette app (GET and HEAD /<key>); settings default to the environment.

    At most max_concurrent transforms run at once (each decodes an image in a worker thread);
    up to serve.MAX_WAITING times as many wait for a turn, and a request beyond that is answered
    503 SlowDown at once, so a burst cannot queue unbounded memory behind the decoder.
    """
    import asyncio

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.routing import Route

    gate: Dict[str, object] = {}  # created on the app's own event loop, sized from the first settings
    admitted = [0]

    async def get(request):
        configured, failed = (settings, None) if settings is not None else serve.settings_or_reply()
        if failed:
            return _response(failed)
        if "slots" not in gate:
            gate["slots"] = asyncio.Semaphore(configured.max_concurrent)
        if admitted[0] >= configured.max_concurrent * (1 + serve.MAX_WAITING):
            busy = serve.Reply.error(503, "SlowDown", "the endpoint is busy; retry shortly")
            return _response(serve.Reply(busy.status, busy.body, busy.content_type, busy.error_code, busy.message,
                                         {"retry-after": "1"}))
        admitted[0] += 1
        try:
            query: Dict[str, List[str]] = {}
            for name, value in request.query_params.multi_items():
                query.setdefault(name, []).append(value)
            async with gate["slots"]:
                answer = await run_in_threadpool(object_reply, configured, request.path_params["key"], query)
        finally:
            admitted[0] -= 1
        return _response(answer)

    return Starlette(routes=[Route("/{key:path}", get, methods=["GET"])])


def _response(answer: serve.Reply):
    from starlette.responses import Response

    headers = dict(answer.headers, **({"x-sparkprep-error": answer.error_code} if answer.error_code else {}))
    return Response(answer.body, answer.status, headers=headers, media_type=answer.content_type)
