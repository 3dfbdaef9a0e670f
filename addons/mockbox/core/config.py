"""Configuration: shipped defaults < the user's file < environment variables.

Command-line flags and mitmproxy options are applied on top by the addons that own them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .yamlsrc import SourcedDocument, YamlSyntaxError, load_sourced

# Environment variable → key path in the configuration.
ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "MOCKBOX_MOCKS": ("mocks",),
    "MOCKBOX_UNMATCHED": ("unmatched",),
    "FLY_REGION": ("region",),  # set by Fly.io in every machine; MOCKBOX_REGION wins
    "MOCKBOX_REGION": ("region",),
    "MOCKBOX_REDIS_URL": ("redis_url",),
    "MOCKBOX_RATE_LIMIT_AI": ("rate_limit", "ai", "limit"),
    "MOCKBOX_RATE_LIMIT_PUBLIC": ("rate_limit", "public", "limit"),
    "MOCKBOX_HOST": ("proxy", "host"),
    "MOCKBOX_PORT": ("proxy", "port"),
    "MOCKBOX_MODE": ("proxy", "mode"),
    "MOCKBOX_ADMIN_HOST": ("admin", "host"),
    "MOCKBOX_ADMIN_PORT": ("admin", "port"),
    "MOCKBOX_ADMIN_TOKEN": ("admin", "token"),
    "MOCKBOX_AI_PROVIDER": ("ai", "provider"),
    "MOCKBOX_AI_MODEL": ("ai", "model"),
    "MOCKBOX_AI_BASE_URL": ("ai", "base_url"),
    "MOCKBOX_CACHE_ENABLED": ("cache", "enabled"),
    "MOCKBOX_CDN_CLOUDFLARE_ZONE": ("cdn", "cloudflare_zone"),
}
# Mappings whose keys are the user's (model names...), not a fixed set.
OPEN_MAPS = {("ai", "prices")}


class ConfigError(ValueError):
    pass


@cache
def _defaults_document() -> SourcedDocument:
    text = resources.files("mockbox.defaults").joinpath("mockbox.yaml").read_text()
    return load_sourced(text)


def defaults() -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(_defaults_document().data)
    return data


@dataclass(frozen=True, slots=True)
class Config:
    data: dict[str, Any]
    file: Path | None = None

    def get(self, *path: str) -> Any:
        node: Any = self.data
        for key in path:
            node = node[key]
        return node


def load_config(file: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Defaults, then `file`, then the MOCKBOX_* variables of `env`."""
    data = defaults()
    if file is not None:
        try:
            doc = load_sourced(file.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"{file}: cannot read configuration: {e.strerror or e}") from e
        except YamlSyntaxError as e:
            raise ConfigError(f"{file}:{e.line}: invalid YAML: {e}") from e
        if doc.data is not None:
            if not isinstance(doc.data, dict):
                raise ConfigError(f"{file}:1: the configuration must be a mapping")
            _merge(data, doc.data, (), file, doc)
    for name, path in ENVIRONMENT.items():
        if env is not None and env.get(name, "") != "":
            _set(data, path, env[name], name)
    return Config(data, file)


def _merge(
    base: dict[str, Any],
    update: dict[str, Any],
    path: tuple[str, ...],
    file: Path,
    doc: SourcedDocument,
) -> None:
    for key, value in update.items():
        here = (*path, key)
        if key not in base:
            line = doc.line_of(here)
            known = ", ".join(sorted(base))
            raise ConfigError(f"{file}:{line}: unknown key {'.'.join(here)!r} (known: {known})")
        default = base[key]
        if here in OPEN_MAPS and isinstance(value, dict):
            default.update(value)
        elif isinstance(default, dict) and default:
            if not isinstance(value, dict):
                raise ConfigError(f"{file}:{doc.line_of(here)}: {'.'.join(here)} must be a mapping")
            _merge(default, value, here, file, doc)
        else:
            base[key] = _coerce(value, default, f"{file}:{doc.line_of(here)}: {'.'.join(here)}")


def _set(data: dict[str, Any], path: tuple[str, ...], raw: str, origin: str) -> None:
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = _coerce(raw, node[path[-1]], origin)


def _coerce(value: Any, default: Any, origin: str) -> Any:
    """Give `value` the type of `default` (environment values arrive as text)."""
    if default is None or isinstance(default, (dict, list)):
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: expected {type(default).__name__}, got {value!r}") from None
