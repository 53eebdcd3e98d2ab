"""Database URLs from AWS Secrets Manager.

A secret is a JSON object, either ``{"url": "mysql+pymysql://user:pw@host/db"}`` or the fields
RDS writes (``engine``, ``host``, ``port``, ``username``, ``password``, ``dbname``). When the
handler also has a URL for the same side, the secret's fields fill it in: an RDS-managed master
secret holds only ``username`` and ``password``, the URL gives the rest. Secrets are cached for
:data:`CACHE_SECONDS` in a warm Lambda container, so that a rotated password is picked up.

The secret's value never reaches a message: errors name the secret id and the field, not values.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from rowferry.aws.config import Endpoint
from rowferry.dialects.connect import describe
from rowferry.errors import ConfigError, ConnectError

#: How long a warm container keeps a secret before reading it again.
CACHE_SECONDS = 300.0
#: AWS API calls give up quickly (botocore waits 60 s by default): an unreachable endpoint
#: (a VPC without NAT or endpoint) must fail with a message, not run into Lambda's timeout.
AWS_TIMEOUTS = {"connect_timeout": 3, "read_timeout": 5, "retries": {"max_attempts": 2}}

#: RDS ``engine`` values and the SQLAlchemy driver rowferry uses for them.
DRIVERS = {
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "aurora": "mysql+pymysql",
    "aurora-mysql": "mysql+pymysql",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "aurora-postgresql": "postgresql+psycopg",
}

_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def resolve(endpoint: Endpoint) -> str:
    """The URL of ``endpoint`` (with its password) as a string for :func:`rowferry.run`."""
    if endpoint.secret is None:
        return endpoint.url or ""
    url = url_from_fields(read_secret(endpoint.secret), endpoint.url, endpoint.secret)
    return url.render_as_string(hide_password=False)


def url_from_fields(fields: dict[str, Any], base: str | None, secret_id: str) -> sa.URL:
    """Build a URL from a secret's fields, on top of ``base`` when given."""
    if fields.get("url"):
        return _parse(str(fields["url"]), f"the 'url' of secret {secret_id!r}")
    url = _parse(base, "ROWFERRY_SOURCE/TARGET") if base else None
    if url is None:
        engine = str(fields.get("engine", "")).lower()
        if engine not in DRIVERS:
            raise ConfigError(
                f"secret {secret_id!r}: 'engine' is {fields.get('engine')!r}; expected one of "
                f"{', '.join(sorted(DRIVERS))}, or a 'url' field"
            )
        missing = [k for k in ("host", "username") if not fields.get(k)]
        if missing:
            raise ConfigError(f"secret {secret_id!r} has no {' or '.join(missing)} field")
        url = sa.URL.create(DRIVERS[engine])
    return url.set(**_url_parts(fields, secret_id))


def _url_parts(fields: dict[str, Any], secret_id: str) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for key, part in (
        ("host", "host"),
        ("username", "username"),
        ("password", "password"),
        ("dbname", "database"),
        ("database", "database"),
    ):
        if fields.get(key) not in (None, ""):
            parts[part] = str(fields[key])
    if fields.get("port") not in (None, ""):
        try:
            parts["port"] = int(fields["port"])
        except (TypeError, ValueError):
            raise ConfigError(f"secret {secret_id!r}: 'port' is not a number") from None
    return parts


def _parse(text: str, where: str) -> sa.URL:
    try:
        return sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise ConfigError(f"{where} is not a database URL ({describe(text)})") from exc


def read_secret(secret_id: str) -> dict[str, Any]:
    """The secret's JSON object, from the cache when read less than CACHE_SECONDS ago."""
    cached = _cache.get(secret_id)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    fields = _parse_secret(secret_id, _fetch(secret_id))
    _cache[secret_id] = (time.monotonic(), fields)
    return fields


def clear_cache() -> None:
    _cache.clear()


def client(service: str) -> Any:
    """A boto3 client with short timeouts."""
    import boto3  # type: ignore[import-untyped, unused-ignore]
    from botocore.config import Config  # type: ignore[import-untyped, unused-ignore]

    return boto3.client(service, config=Config(**AWS_TIMEOUTS))


def _fetch(secret_id: str) -> str:
    from botocore.exceptions import (  # type: ignore[import-untyped, unused-ignore]
        BotoCoreError,
        ClientError,
    )

    try:
        response = client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        transient = code in ("ThrottlingException", "InternalServiceError")
        raise (ConnectError if transient else ConfigError)(
            f"cannot read secret {secret_id!r}: {code} (check the secret id and that the "
            "function's role may call secretsmanager:GetSecretValue on it)"
        ) from exc
    except BotoCoreError as exc:
        raise ConnectError(
            f"cannot reach AWS Secrets Manager for secret {secret_id!r}: {exc} (in a VPC, the "
            "subnets need a NAT gateway or a secretsmanager VPC endpoint)"
        ) from exc
    text = response.get("SecretString")
    if not isinstance(text, str):
        raise ConfigError(f"secret {secret_id!r} has no SecretString (binary secrets: use JSON)")
    return text


def _parse_secret(secret_id: str, text: str) -> dict[str, Any]:
    try:
        fields = json.loads(text)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise ConfigError(
            f'secret {secret_id!r} is not a JSON object; expected {{"url": ...}} or the RDS '
            "fields engine, host, port, username, password, dbname"
        )
    return fields
