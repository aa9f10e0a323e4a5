"""Settings and thresholds: the model, TOML load/save and validation with locations.

First step of the data flow (config -> engine -> store/actions -> report).
Every error a user can make here is a ConfigError naming file, line and field.
One module per job: lines (reading files and locating lines for messages),
thresholds (parsing and validating them), legacy (rrdAlarmConfig.txt), writing
(TOML out), settings (rrdalarm.toml) and starter (what `init` writes). The
dataclasses and ConfigError live in rrdalarm.model, below every stage.
"""

from __future__ import annotations

from rrdalarm.config.lines import Locate, read_config_text, top_level_line
from rrdalarm.config.settings import find_settings_file, load_settings, path_length_problem, rrdcached_problem
from rrdalarm.config.starter import STARTER_SETTINGS, starter_settings
from rrdalarm.config.thresholds import (
    MAX_ID,
    check_unique_ids,
    is_legacy_text,
    load_thresholds,
    parse_thresholds_toml,
    threshold_from_dict,
)
from rrdalarm.config.writing import save_thresholds, threshold_to_table, thresholds_to_toml
from rrdalarm.model.definitions import (
    CONSOLIDATION_FUNCTIONS,
    DEFAULT_SOURCE,
    RRDCACHED_ENV,
    SETTINGS_ENV,
    SETTINGS_SEARCH,
    ActionSpec,
    DeliverySettings,
    Location,
    NtopngSettings,
    ServiceSettings,
    Settings,
    SmtpSettings,
    Threshold,
    default_data_dir,
)
from rrdalarm.model.errors import ConfigError
from rrdalarm.sources.rrd_index import glob_problem

__all__ = [
    "CONSOLIDATION_FUNCTIONS",
    "DEFAULT_SOURCE",
    "MAX_ID",
    "RRDCACHED_ENV",
    "SETTINGS_ENV",
    "SETTINGS_SEARCH",
    "STARTER_SETTINGS",
    "ActionSpec",
    "ConfigError",
    "DeliverySettings",
    "Locate",
    "Location",
    "NtopngSettings",
    "ServiceSettings",
    "Settings",
    "SmtpSettings",
    "Threshold",
    "check_unique_ids",
    "default_data_dir",
    "find_settings_file",
    "glob_problem",
    "is_legacy_text",
    "load_settings",
    "load_thresholds",
    "parse_thresholds_toml",
    "path_length_problem",
    "read_config_text",
    "rrdcached_problem",
    "save_thresholds",
    "starter_settings",
    "threshold_from_dict",
    "threshold_to_table",
    "thresholds_to_toml",
    "top_level_line",
]
