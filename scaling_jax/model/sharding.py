"""Every sharding decision of the model: logical axis names -> mesh axes.

Parameters carry logical axis names in their ``out_sharding`` metadata (see transformer.py);
``LOGICAL_RULES`` maps each name to mesh axes of a ('data', 'fsdp', 'tensor') mesh. Batch is
split over data and fsdp; fsdp also splits the 'embed' axis of the weights (ZeRO-3 style);
tensor splits heads, the SwiGLU width and the vocabulary (Megatron style).

Use: ``mesh = make_mesh(data=-1, fsdp=2, tensor=2)``; ``shard_model(model, mesh)``; put the
batch on ``batch_sharding(mesh)``; run the jitted step inside ``with jax.set_mesh(mesh):`` so
the activation constraints (``constrain``) apply. Without a mesh they are no-ops.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from scaling_jax.errors import UserError

MESH_AXES = ("data", "fsdp", "tensor")

LOGICAL_RULES: dict[str, str | tuple[str, ...] | None] = {
    "batch": ("data", "fsdp"),
    "seq": None,
    "embed": "fsdp",
    "heads": "tensor",
    "head_dim": None,
    "mlp": "tensor",
    "vocab": "tensor",
    "embed_vocab": None,  # the input table: rows are gathered, so split only its width
    "layers": None,
    "norm": None,
}


def logical_to_spec(names: Sequence[str | None]) -> P:
    """PartitionSpec for a tuple of logical axis names (None stays unsplit)."""
    unknown = [n for n in names if n is not None and n not in LOGICAL_RULES]
    if unknown:
        raise UserError(f"logical axis {unknown[0]!r} has no rule; known: {sorted(LOGICAL_RULES)}")
    return P(*(None if n is None else LOGICAL_RULES[n] for n in names))


def make_mesh(data: int = -1, fsdp: int = 1, tensor: int = 1, devices=None) -> Mesh:
    """A ('data', 'fsdp', 'tensor') mesh; one size may be -1 to take the remaining devices."""
    devices = list(jax.devices() if devices is None else devices)
    sizes = [data, fsdp, tensor]
    if sizes.count(-1) > 1:
        raise UserError(f"mesh sizes {dict(zip(MESH_AXES, sizes))}: at most one may be -1")
    for axis, size in zip(MESH_AXES, sizes):
        if size == 0 or size < -1:
            raise UserError(f"mesh axis {axis}: size must be positive or -1, got {size}")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if len(devices) % known:
            raise UserError(f"mesh sizes {dict(zip(MESH_AXES, sizes))} do not divide {len(devices)} devices")
        sizes[sizes.index(-1)] = len(devices) // known
    if math.prod(sizes) != len(devices):
        raise UserError(
            f"mesh sizes {dict(zip(MESH_AXES, sizes))} need {math.prod(sizes)} devices, have {len(devices)}"
        )
    return Mesh(np.asarray(devices).reshape(sizes), MESH_AXES)


def state_shardings(model_or_state, mesh: Mesh):
    """NamedSharding for every variable of an nnx model (or its state), by LOGICAL_RULES."""
    state = model_or_state if isinstance(model_or_state, nnx.State) else nnx.state(model_or_state)

    def one(var):
        names = var.get_metadata().get("out_sharding") or (None,) * var.value.ndim
        return NamedSharding(mesh, logical_to_spec(names))

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def shard_model(model, mesh: Mesh):
    """Place the model's variables on ``mesh`` in place, following LOGICAL_RULES; returns it."""
    state = nnx.state(model)
    nnx.update(model, jax.device_put(state, state_shardings(state, mesh)))
    return model


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of a (batch, seq) token array: batch over (data, fsdp)."""
    return NamedSharding(mesh, logical_to_spec(("batch", "seq")))


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
    """Activation sharding constraint by logical names; a no-op when no mesh is set."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or not set(MESH_AXES) <= set(mesh.axis_names):
        return x
    return jax.lax.with_sharding_constraint(x, logical_to_spec(names))


def split_sizes(sharding: NamedSharding) -> tuple[int, ...]:
    """How many pieces each array axis is cut into by ``sharding`` (1 for unsplit axes)."""
    def size(axes):
        axes = () if axes is None else (axes,) if isinstance(axes, str) else axes
        return math.prod(sharding.mesh.shape[a] for a in axes)
    return tuple(size(a) for a in sharding.spec)


def check_even_split(abstract, shardings) -> None:
    """UserError naming the first array of ``abstract`` that ``shardings`` would cut into unequal
    pieces (jit refuses those): found before a run writes anything, not at its first step."""
    def check(path, sharding, sub):
        for leaf in jax.tree.leaves(sub):
            for i, (dim, n) in enumerate(zip(leaf.shape, split_sizes(sharding))):
                if dim % n:
                    raise UserError(f"mesh {dict(sharding.mesh.shape)}: {jax.tree_util.keystr(path)} of shape "
                                    f"{tuple(leaf.shape)} does not split evenly: its axis {i} ({dim}) over "
                                    f"{sharding.spec[i]} ({n} devices)")
    jax.tree_util.tree_map_with_path(check, shardings, abstract)
