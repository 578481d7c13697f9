"""The run spec: every option of a run, declared once, with the same names in the CLI, TOML rows and records.

- :mod:`.run_spec`: :class:`RunSpec`, its fields (type, default, help, panel,
  CLI shape), presets and fallbacks.
- :mod:`.validate`: the checks a resolved spec passes before any work.
- :mod:`.parse`: the text forms of options (``32x128``, ``uniformity:0.001``).
- :mod:`.typecheck`: values from TOML or JSON checked against the field types.
- :mod:`.plugin_options`: plugin options typed by the signature of the plugin's factory.
- :mod:`.config`: one run's options in a TOML file (``--config``, ``--print-config``).
"""

from .run_spec import *  # noqa: F403  (the spec's public names, listed in its __all__)
from .run_spec import __all__ as _spec_names
from .validate import MAX_SEED, validate

__all__ = [*_spec_names, "MAX_SEED", "validate"]
