"""Makes ``lm_eval --model scaling_jax`` work on lm-eval releases without plugin discovery.

The installed ``scaling_jax_lm_eval.pth`` (see setup.py) calls ``install()`` at interpreter
start. It only adds an import finder: nothing of lm-eval or JAX is imported then. When a process
imports ``lm_eval.models`` (lm-eval does, the first time it looks a model up), the finder lets it
load and then registers ``scaling_jax`` with lm-eval's model registry as a lazy placeholder, so
``eval/harness.py`` (and JAX) is imported only when that model is asked for. A registry that
already knows the name (an lm-eval that read our entry point) is left as it is.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

WATCHED = "lm_eval.models"
ALIAS, TARGET = "scaling_jax", "scaling_jax.eval.harness:HarnessLM"


def register(registry) -> None:
    """Add the model to lm-eval's ``model_registry`` unless it is there already."""
    if ALIAS not in registry:
        registry.register(ALIAS, target=TARGET)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for ``lm_eval.models`` it asks the other finders for the module and
    wraps its loader so that the registration follows the module's own code."""

    def find_spec(self, name, path=None, target=None):
        if name != WATCHED:
            return None
        sys.meta_path.remove(self)  # once; and find_spec below must not come back here
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            from lm_eval.api.registry import model_registry

            register(model_registry)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Watch for lm-eval's model package (at most one finder; a no-op once it is imported)."""
    if WATCHED in sys.modules:
        from lm_eval.api.registry import model_registry

        register(model_registry)
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
