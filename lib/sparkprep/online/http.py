"""A plain HTTP transform endpoint: `GET /<key>?size=128&mode=L` returns the bucket's object
through the recorded recipe. The path where S3 Object Lambda is not available (new AWS accounts
since 7 November 2025).

- `function_url_handler`: a Lambda Function URL, or API Gateway (REST v1 or HTTP v2 payloads).
- `asgi_app()`: the same as an ASGI app (starlette, the `online` extra), e.g.
  `uvicorn --factory sparkprep.online.http:asgi_app --host 127.0.0.1`.

Configuration comes from the environment: $SPARKPREP_TRANSFORM (a processed table URI or a spec
JSON), $SPARKPREP_BUCKET (and $SPARKPREP_PREFIX), $SPARKPREP_ALLOW_OVERRIDES, $SPARKPREP_MAX_BYTES,
$SPARKPREP_MAX_PIXELS (serve.settings_from).
"""

from __future__ import annotations

import base64
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import parse_qs, unquote

from sparkprep.online import serve, store


def object_reply(settings: serve.Settings, key: str, query: Mapping[str, List[str]]) -> serve.Reply:
    """GET <key> from the configured bucket through the recipe."""
    if not settings.bucket:
        return serve.Reply.error(500, "InvalidConfiguration", "no bucket: set $SPARKPREP_BUCKET")
    key = key.lstrip("/")
    if not key:
        return serve.Reply.error(400, "InvalidArgument", "expected GET /<object key>")
    full = f"{settings.prefix}/{key}" if settings.prefix else key
    return serve.reply(settings, lambda limit: store.get_object(settings.bucket, full, limit), query)


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
    """The endpoint as a starlette app (GET and HEAD /<key>); settings default to the environment."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response
    from starlette.routing import Route

    async def get(request):
        configured, failed = (settings, None) if settings is not None else serve.settings_or_reply()
        query: Dict[str, List[str]] = {}
        for name, value in request.query_params.multi_items():
            query.setdefault(name, []).append(value)
        answer = failed or await run_in_threadpool(object_reply, configured, request.path_params["key"], query)
        headers = dict(answer.headers, **({"x-sparkprep-error": answer.error_code} if answer.error_code else {}))
        return Response(answer.body, answer.status, headers=headers, media_type=answer.content_type)

    return Starlette(routes=[Route("/{key:path}", get, methods=["GET"])])
