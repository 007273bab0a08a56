"""Registered resource providers: which namespaces opstatus answers for, and how.

As ARM registers resource providers, each namespace has its api-versions and the shape its
operation resource takes on the wire:

- ``nested``: the published Microsoft.Cache swagger, where ``OperationStatus.error`` is an
  ``ErrorResponse`` (``error.error.code``) and the body carries only id, name, startTime,
  endTime, status and error. This is what the Azure SDK's model reads.
- ``flat``: the ARM RPC operation resource, ``error.code`` directly, plus ``percentComplete``
  and ``properties`` (the latter only once Succeeded). This is what azure-core's LRO poller
  reads from an ``Azure-AsyncOperation`` URL.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from .errors import InvalidInput

ErrorShape = Literal["nested", "flat"]

#: Every api-version Microsoft.Cache (Redis Enterprise) publishes with operationsStatus,
#: stable and preview, including the older preview layout's.
MICROSOFT_CACHE_API_VERSIONS = (
    "2020-10-01-preview",
    "2021-02-01-preview",
    "2021-03-01",
    "2021-08-01",
    "2022-01-01",
    "2022-07-01-preview",
    "2022-08-01-preview",
    "2022-11-01-preview",
    "2023-03-01-preview",
    "2023-07-01",
    "2023-08-01-preview",
    "2023-10-01-preview",
    "2023-11-01",
    "2024-02-01",
    "2024-03-01-preview",
    "2024-06-01-preview",
    "2024-09-01-preview",
    "2024-10-01",
    "2025-04-01",
    "2025-05-01-preview",
    "2025-07-01",
    "2025-08-01-preview",
    "2026-02-01-preview",
)


@dataclass(frozen=True)
class Provider:
    namespace: str
    api_versions: tuple[str, ...]
    error_shape: ErrorShape = "nested"

    def check_api_version(self, api_version: str | None, location: str) -> None:
        if not api_version:
            raise InvalidInput(
                "The api-version query parameter (?api-version=) is required for all requests.",
                code="MissingApiVersionParameter",
                target="api-version",
            )
        if api_version.lower() not in self._lowered:
            raise InvalidInput(
                f"No registered resource provider found for location '{location}' and API "
                f"version '{api_version[:64]}' for type 'locations/operationsStatus'. The "
                f"supported api-versions are '{', '.join(self.api_versions)}'. The supported "
                "locations are 'all'.",
                code="NoRegisteredProviderFound",
                target="api-version",
            )

    @cached_property
    def _lowered(self) -> frozenset[str]:
        return frozenset(v.lower() for v in self.api_versions)


#: Where an operation created by request id (the classic form, which names no provider and
#: no location) is stored, so that ARM clients can read it too: a provider of opstatus's own
#: with the RPC operation shape, and the api-version opstatus's client sends by default.
CLASSIC_NAMESPACE = "Opstatus.Classic"
CLASSIC_LOCATION = "global"
CLASSIC_API_VERSIONS = ("2025-07-01",)

DEFAULT_PROVIDERS = (
    Provider("Microsoft.Cache", MICROSOFT_CACHE_API_VERSIONS, "nested"),
    Provider(CLASSIC_NAMESPACE, CLASSIC_API_VERSIONS, "flat"),
)


class ProviderRegistry:
    def __init__(self, providers: tuple[Provider, ...] = DEFAULT_PROVIDERS) -> None:
        self._by_name = {p.namespace.lower(): p for p in providers}

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._by_name.values())

    def lookup(self, namespace: str) -> Provider:
        provider = self._by_name.get(namespace.lower())
        if provider is None:
            shown = namespace[:100]
            raise InvalidInput(
                f"No registered resource provider found for namespace '{shown}'. The "
                f"registered namespaces are '{', '.join(p.namespace for p in self)}'.",
                code="NoRegisteredProviderFound",
                target="namespace",
            )
        return provider

    @classmethod
    def from_file(cls, path: str | Path, include_defaults: bool = True) -> ProviderRegistry:
        """Read ``[[provider]]`` tables: namespace, api_versions, error_shape ("nested"/"flat")."""
        with open(path, "rb") as f:
            data = tomllib.load(f)
        providers = list(DEFAULT_PROVIDERS) if include_defaults else []
        for i, entry in enumerate(data.get("provider", [])):
            providers.append(_provider_from_table(entry, f"{path}: provider #{i + 1}"))
        return cls(tuple(providers))


def _provider_from_table(entry: dict[str, object], where: str) -> Provider:
    namespace = entry.get("namespace")
    versions = entry.get("api_versions")
    shape = entry.get("error_shape", "flat")
    if not isinstance(namespace, str) or "." not in namespace:
        raise ValueError(f"{where}: 'namespace' must look like 'Company.Service'")
    if (
        not isinstance(versions, list)
        or not versions
        or not all(isinstance(v, str) for v in versions)
    ):
        raise ValueError(f"{where}: 'api_versions' must be a non-empty list of strings")
    if shape not in ("nested", "flat"):
        raise ValueError(f"{where}: 'error_shape' must be 'nested' or 'flat', got {shape!r}")
    return Provider(namespace, tuple(versions), shape)
