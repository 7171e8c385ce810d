"""Unit tests run once per parser adapter: the protocol and the shared rules exist once."""

from __future__ import annotations

import pytest

from gunicorn_async_workers.http.parsers import H11Parser, HttptoolsParser, ParserAdapter

PARSER_CLASSES: list[type[ParserAdapter]] = [HttptoolsParser, H11Parser]


@pytest.fixture(params=PARSER_CLASSES, ids=lambda cls: cls.__name__)
def parser_class(request: pytest.FixtureRequest) -> type[ParserAdapter]:
    return request.param
