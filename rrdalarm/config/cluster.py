"""The URLs of [cluster]: the broker that carries shards to the trees' workers, and where answers wait."""

from __future__ import annotations

from urllib.parse import urlsplit

from rrdalarm.common.secrets import SecretError, resolve_secret
from rrdalarm.model.definitions import Settings
from rrdalarm.model.errors import ConfigError

# Brokers that cannot hold the answers (the result backend defaults to the broker's URL).
_NO_RESULTS = ("amqp", "amqps", "pyamqp", "librabbitmq", "sqs")


def broker_urls(settings: Settings) -> tuple[str, str]:
    """(broker, result backend) as URLs: secrets read from their file or variable now."""
    cluster = settings.cluster
    try:
        broker = resolve_secret(cluster.broker, "[cluster] broker")
        backend = resolve_secret(cluster.result_backend, "[cluster] result_backend")
    except SecretError as exc:
        raise ConfigError(settings.path, str(exc), field="broker") from None
    if not broker:
        raise ConfigError(settings.path, "no broker: set [cluster] broker in the settings", field="broker")
    if not backend and urlsplit(broker).scheme in _NO_RESULTS:
        # Celery keeps no results in RabbitMQ: the answers need a store of their own.
        raise ConfigError(settings.path, f"a {urlsplit(broker).scheme}:// broker keeps no answers: set "
                          "[cluster] result_backend, e.g. to a redis:// URL", field="result_backend")
    return broker, backend or broker
