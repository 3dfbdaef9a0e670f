"""The Settings addon: reads config/mockbox.yaml, the user's file and MOCKBOX_* variables.

Other addons read `settings.config`; their own `mockbox_*` options, when set, win over it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions
from mitmproxy.addonmanager import Loader

from .core.config import Config, ConfigError, load_config

# mitmproxy accepts these unions as option types; typed as Any for Loader.add_option's stub.
OptionalStr: Any = str | None
OptionalInt: Any = int | None


class Settings:
    def __init__(self) -> None:
        self.config: Config = load_config(None, os.environ)

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "mockbox_config",
            OptionalStr,
            None,
            "MockBox configuration file (YAML); defaults: config/mockbox.yaml.",
        )
        loader.add_option(
            "mockbox_region",
            OptionalStr,
            None,
            "Region name of this instance (MOCKBOX_REGION).",  # type: ignore[arg-type]
        )
        loader.add_option(
            "mockbox_redis",
            OptionalStr,
            None,
            "Redis URL for shared state (MOCKBOX_REDIS_URL).",  # type: ignore[arg-type]
        )

    def configure(self, updated: set[str]) -> None:
        if "mockbox_config" in updated:
            path = ctx.options.mockbox_config
            try:
                self.config = load_config(Path(path) if path else None, os.environ)
            except ConfigError as e:
                raise exceptions.OptionsError(str(e)) from e
            if not ctx.options.has_changed("connection_strategy"):
                # Mocks must answer HTTPS without reaching the real host first.
                ctx.options.connection_strategy = self.config.get("proxy", "connection_strategy")

    def value(self, option: str, *path: str) -> Any:
        """The option's value when set, else the configuration's."""
        set_value = getattr(ctx.options, option)
        return self.config.get(*path) if set_value is None else set_value

    @property
    def region(self) -> str:
        return str(self.value("mockbox_region", "region"))

    @property
    def redis_url(self) -> str:
        return str(self.value("mockbox_redis", "redis_url"))
