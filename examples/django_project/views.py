"""Views of the example Django project; the same code runs under WSGI and under ASGI."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Iterator

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django.views.static import serve

STREAM_CHUNKS = 10


@require_GET
def hello(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("Hello, world!", content_type="text/plain")
    response["X-Request-Class"] = type(request).__name__  # WSGIRequest or ASGIRequest
    return response


@require_GET
def items(request: HttpRequest) -> HttpResponse:
    try:
        limit = int(request.GET.get("limit", "3"))
    except ValueError:
        limit = -1
    if not 0 <= limit <= 100:
        return HttpResponseBadRequest("limit must be an integer from 0 to 100")
    return JsonResponse({"limit": limit, "items": [f"item-{i}" for i in range(limit)]})


@csrf_exempt  # an API endpoint: no cookies, no CSRF token
@require_POST
def echo(request: HttpRequest) -> HttpResponse:
    try:
        received = json.loads(request.body)
    except ValueError:
        return HttpResponseBadRequest("send a JSON body")
    return JsonResponse({"received": received})


@csrf_exempt  # an example without sessions or templates; a real form carries the CSRF token
@require_POST
def form(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"fields": {key: request.POST.getlist(key) for key in request.POST}})


@csrf_exempt
@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    uploaded = request.FILES.get("file")
    if uploaded is None:
        return HttpResponseBadRequest("send the file as the multipart field 'file'")
    digest = hashlib.sha256()
    for chunk in uploaded.chunks():
        digest.update(chunk)
    return JsonResponse({"filename": uploaded.name, "size": uploaded.size,
                         "sha256": digest.hexdigest(), "fields": request.POST.dict()})


def _chunks(who: str, path: str) -> Iterator[str]:
    for i in range(STREAM_CHUNKS):
        yield f"chunk {i} for {who} from {path}\n"


async def _achunks(who: str, path: str) -> AsyncIterator[str]:
    for line in _chunks(who, path):
        yield line
        await asyncio.sleep(0)  # a real app would await a database cursor or an API here


@require_GET
def stream(request: HttpRequest) -> HttpResponse:
    # Django serves a sync iterator under WSGI and an async one under ASGI; given the other
    # kind it still works but warns and buffers the whole response in memory first.
    who = request.GET.get("who", "world")
    content = (_achunks(who, request.path) if isinstance(request, ASGIRequest)
               else _chunks(who, request.path))
    return StreamingHttpResponse(content, content_type="text/plain")


async def _read_in_thread(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    iterator = iter(chunks)
    while (chunk := await asyncio.to_thread(next, iterator, None)) is not None:
        yield chunk


def static_file(request: HttpRequest, path: str) -> HttpResponse:
    """django.views.static.serve (Last-Modified, If-Modified-Since, 404) from STATIC_ROOT.

    Fine for an example; in production a web server or WhiteNoise serves static files.
    Under WSGI the FileResponse goes to the server's `wsgi.file_wrapper`; under ASGI Django
    wants an async iterator (a sync one makes it warn and read the whole file into memory),
    so the file is read chunk by chunk in a thread.
    """
    response = serve(request, path, document_root=settings.STATIC_ROOT)
    if isinstance(request, ASGIRequest) and response.streaming and not response.is_async:
        response.streaming_content = _read_in_thread(response.streaming_content)
    return response
