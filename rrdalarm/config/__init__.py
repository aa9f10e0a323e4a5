"""Settings and thresholds: the model, TOML load/save and validation with locations.

First step of the data flow (config -> engine -> store/actions -> report).
Every error a user can make here is a ConfigError naming file, line and field.
One module per job: lines (reading files and locating lines for messages),
thresholds (parsing and validating them), legacy (rrdAlarmConfig.txt), writing
(TOML out), settings (rrdalarm.toml) and starter (what `init` writes). The
dataclasses and ConfigError live in rrdalarm.model, below every stage.
"""
