"""S3 Object Lambda: a GET through the access point returns the object transformed by the recipe.

Handler: `sparkprep.online.object_lambda.handler`. The access point's configuration payload is
the JSON serve.settings_from describes (or just a processed table URI); without one, the
function's environment ($SPARKPREP_TRANSFORM, ...). The original comes from the presigned
`inputS3Url`; the answer goes back with WriteGetObjectResponse, errors included, so S3 passes
404s on and a caller sees 400, 403, 413 or 422 with a reason instead of a timeout.

AWS: since 7 November 2025 S3 Object Lambda is open only to existing customers (and select
partners); new deployments use sparkprep.online.http instead.
"""

from __future__ import annotations

import http.client
import logging
import re
import urllib.error
import urllib.request
from typing import Any, Dict
from urllib.parse import parse_qs, urlparse

from sparkprep.online import serve, store

LOG = logging.getLogger("sparkprep.online")
FETCH_TIMEOUT = 30  # seconds; a Lambda's own timeout bounds the whole call anyway


def handler(event: Dict[str, Any], context: Any = None) -> Dict[str, int]:
    """The Lambda entry point; always answers through WriteGetObjectResponse."""
    context_ = event["getObjectContext"]
    user = event.get("userRequest") or {}
    url, query = user.get("url", ""), parse_qs(urlparse(user.get("url", "")).query, keep_blank_values=True)
    settings, failed = serve.settings_or_reply((event.get("configuration") or {}).get("payload"))
    if not failed and ({h.lower() for h in user.get("headers") or {}} & {"range"} or "partNumber" in query):
        failed = serve.Reply.error(501, "NotImplemented", "a transformed image has no byte ranges or parts: "
                                                          "GET it whole")
    answer = failed or serve.reply(settings, lambda limit: fetch(context_["inputS3Url"], limit), query)
    try:
        write_response(context_["outputRoute"], context_["outputToken"], answer)
    except Exception:  # noqa: BLE001 - S3 did not take the answer: log it, the caller gets S3's own error
        LOG.exception("WriteGetObjectResponse failed")
        return {"status_code": 500}
    LOG.info("%s %s -> %s %s", urlparse(url).path, answer.headers.get("x-sparkprep-transform", ""), answer.status,
             answer.error_code or "")
    return {"status_code": answer.status}


def fetch(presigned_url: str, max_bytes: int) -> bytes:
    """The original through the presigned URL; store.Missing with S3's status and code on an error,
    store.Unavailable (502, or 504 for a timeout) when the GET fails or its body is cut short."""
    where = urlparse(presigned_url).path
    try:
        with urllib.request.urlopen(presigned_url, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 - S3's URL
            length = response.headers.get("Content-Length")
            if length is not None and int(length) > max_bytes:
                raise store.TooLarge(where, max_bytes)
            data = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")
        code = re.search(r"<Code>([^<]+)</Code>", body)
        message = re.search(r"<Message>([^<]+)</Message>", body)
        raise store.Missing(where, exc.code, code.group(1) if code else str(exc.code),
                            message.group(1) if message else exc.reason) from None
    except urllib.error.URLError as exc:
        raise store.unavailable(where, exc.reason if isinstance(exc.reason, BaseException) else exc) from None
    except (OSError, http.client.HTTPException) as exc:  # a timeout or a reset while reading the body
        raise store.unavailable(where, exc) from None
    if len(data) > max_bytes:
        raise store.TooLarge(where, max_bytes)
    if length is not None and len(data) != int(length):
        raise store.Unavailable(where, 502, "BadGateway",
                                f"the original arrived cut short ({len(data)} of {length} bytes)")
    return data


def write_response(route: str, token: str, answer: serve.Reply) -> None:
    """WriteGetObjectResponse: the body on success, the status, error code and message otherwise."""
    request = {"RequestRoute": route, "RequestToken": token, "StatusCode": answer.status}
    if answer.status == 200:
        request.update(Body=answer.body, ContentType=answer.content_type,
                       Metadata={"sparkprep-transform": answer.headers["x-sparkprep-transform"]})
    else:
        request.update(ErrorCode=answer.error_code or "InternalError", ErrorMessage=answer.message or "")
    store.s3_client().write_get_object_response(**request)
