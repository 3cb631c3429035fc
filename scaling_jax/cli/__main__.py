"""``python -m scaling_jax.cli``: the same as the ``scaling-jax`` command."""

import sys

from scaling_jax.cli import main

sys.exit(main())
