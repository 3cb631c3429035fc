"""JAX's persistent compilation cache for the CLI: a repeated ``fit``, ``reproduce`` or
``posterior`` reuses the executables the first run compiled instead of compiling again.

``$SCALING_JAX_COMPILATION_CACHE`` picks the folder (default: ``$XDG_CACHE_HOME/scaling_jax/jax``,
i.e. ``~/.cache/scaling_jax/jax``); ``0``, ``off`` or ``none`` turns it off. A cache folder the
user already gave JAX (``JAX_COMPILATION_CACHE_DIR``) is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SCALING_JAX_COMPILATION_CACHE"
OFF = ("0", "off", "none", "false")
# The law fits compile many small programs (most under 1 s): cache them all (JAX's default skips those under 1 s).
MIN_COMPILE_SECONDS = 0.0


def cache_dir() -> Path | None:
    """The folder the CLI caches compiled programs in, or None when turned off."""
    value = os.environ.get(ENV_VAR)
    if value is not None and value.strip().lower() in OFF + ("",):
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "scaling_jax" / "jax"


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent cache at :func:`cache_dir` (unless JAX already has one); returns the folder used."""
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    path = cache_dir()
    if path is None:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path
