"""The bundled Redis asks for a password generated into the data dir; nothing prints it."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import redis

from genejobs.config import settings
from tests.conftest import run


def test_the_bundled_redis_refuses_clients_without_the_password(stack):
    config = settings()
    secret = config.redis_password_file
    assert secret.stat().st_mode & 0o777 == 0o600
    given = urlsplit(config.redis_url_given)
    assert given.password is None  # the tests give a URL without one, as a user does
    anonymous = redis.Redis(host=given.hostname, port=given.port, socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    assert urlsplit(config.redis_url).password == secret.read_text().strip()
    assert redis.Redis.from_url(config.redis_url, socket_timeout=5).ping()


def test_status_and_commands_never_print_the_password(stack):
    password = settings().redis_password_file.read_text().strip()
    report = json.loads(run("status", "--format", "json").output)
    assert report["redis"] and ":***@" in report["redis_url"]
    assert password not in json.dumps(report)
    conf = settings().redis_dir / "redis.conf"
    assert conf.stat().st_mode & 0o777 == 0o600
