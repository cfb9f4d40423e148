"""Configuration: the model and its loader."""

from .load import DEFAULT_PATH, ConfigError, load_config
from .model import Config

__all__ = ["DEFAULT_PATH", "Config", "ConfigError", "load_config"]
