"""Shipped presets: TOML files of config keys, with per-task overrides (data only; read by ``config``)."""
