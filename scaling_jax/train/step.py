"""The train step: one ``jit`` with explicit input/output shardings and a donated state.

The state is a pytree ``{'params', 'opt_state', 'step'}``. A step splits the global batch
into ``grad_accum`` micro-batches (row i goes to micro-batch i mod A, so each device's rows
stay on it), sums their gradients in float32, clips, and applies AdamW.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from scaling_jax.model.config import ModelConfig
from scaling_jax.model.loss import lm_loss
from scaling_jax.model.sharding import LOGICAL_RULES, batch_sharding, state_shardings
from scaling_jax.model.transformer import Transformer


@dataclasses.dataclass(frozen=True)
class TrainSetup:
    """What the loop needs from the model: its graph, the state's layout and the jitted steps."""

    graphdef: Any
    state_shardings: Any
    abstract_state: Any
    init: Callable[[], Any]
    start_from: Callable[[Any], Any]  # given parameters -> a state at step 0 with a fresh optimizer
    train_step: Callable[[Any, jax.Array], tuple[Any, dict]]
    eval_step: Callable[[Any, jax.Array], jax.Array]
    batch_sharding: NamedSharding


def _is_masked(x) -> bool:
    return isinstance(x, optax.MaskedNode)


def _opt_shardings(abstract_opt, abstract_params, param_sh, mesh: Mesh):
    """The optimizer state's shardings, derived from the parameters' by tree structure.

    optax keeps per-parameter state (Adam's mu and nu, ...) as subtrees shaped like the
    parameters (masked-out leaves as ``MaskedNode``): each leaf of such a subtree takes its
    parameter's sharding. Scalars (step counts) are replicated. Any other array would be
    replicated on every device by accident, so it is an error that names its path.
    """
    params_def = jax.tree.structure(abstract_params, is_leaf=_is_masked)
    param_leaves = jax.tree.leaves(abstract_params)
    sh_leaves = jax.tree.leaves(param_sh)  # one NamedSharding per parameter, in the same order
    if len(sh_leaves) != len(param_leaves):
        raise ValueError(f"{len(sh_leaves)} parameter shardings for {len(param_leaves)} parameters")
    replicated = NamedSharding(mesh, P())

    def param_shaped(node) -> bool:
        return not _is_masked(node) and jax.tree.structure(node, is_leaf=_is_masked) == params_def

    def unmatched(path, leaf):
        return ValueError(
            f"optimizer state {jax.tree_util.keystr(path)} of shape {tuple(leaf.shape)} matches no parameter; it "
            "would be replicated on every device. Keep per-parameter state in parameter-shaped subtrees.")

    def one(path, node):
        if _is_masked(node):
            return node
        if param_shaped(node):
            out = []
            for (sub, leaf), p, sh in zip(jax.tree_util.tree_leaves_with_path(node, is_leaf=_is_masked),
                                          param_leaves, sh_leaves):
                if _is_masked(leaf) or leaf.shape == p.shape:
                    out.append(leaf if _is_masked(leaf) else sh)
                elif leaf.ndim == 0:
                    out.append(replicated)
                else:
                    raise unmatched((*path, *sub), leaf)
            return jax.tree.unflatten(jax.tree.structure(node, is_leaf=_is_masked), out)
        if np.ndim(node) == 0:
            return replicated
        raise unmatched(path, node)

    return jax.tree_util.tree_map_with_path(one, abstract_opt, is_leaf=lambda x: _is_masked(x) or param_shaped(x))


def _run_once_options() -> dict | None:
    """Compiler options for a program that runs once (the initializer). On the CPU, LLVM's
    optimizations make its many random-number kernels take ~4 s to compile for a one-layer model
    and save nothing at run time; unoptimized it compiles in ~1.3 s (values may differ from the
    optimized build in the last bit). Other backends keep their defaults."""
    return {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None


def setup(cfg: ModelConfig, tx: optax.GradientTransformation | Callable, mesh: Mesh, *, seed: int,
          grad_accum: int = 1, z_loss: float = 1e-4, vocab_chunk: int | None = None,
          lr_schedule: Callable | None = None, total_steps: int | None = None) -> TrainSetup:
    """The jitted init/train/eval steps of ``cfg`` on ``mesh``.

    With ``total_steps``, ``tx`` (and ``lr_schedule``) are functions of the run length, called
    inside the jitted step with it as a traced scalar: the compiled step then depends on shapes
    alone, so runs of one model at different budgets share it through the persistent cache.
    """
    if total_steps is None:
        make_tx, make_lr = (lambda _: tx), (lambda _: lr_schedule)
    else:
        make_tx, make_lr = tx, lr_schedule or (lambda _: None)
    abstract_model = nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(seed)))
    graphdef, abstract_params = nnx.split(abstract_model)
    param_sh = state_shardings(abstract_params, mesh)

    def init():
        params = nnx.state(Transformer(cfg, rngs=nnx.Rngs(seed)))
        return {"params": params, "opt_state": make_tx(total_steps).init(params), "step": jnp.zeros((), jnp.int32)}

    abstract_state = jax.eval_shape(init)
    replicated = NamedSharding(mesh, P())
    state_sh = {"params": param_sh,
                "opt_state": _opt_shardings(abstract_state["opt_state"], abstract_state["params"], param_sh, mesh),
                "step": replicated}
    batch_sh = batch_sharding(mesh)
    micro_sh = NamedSharding(mesh, P(None, LOGICAL_RULES["batch"], None))

    def loss_fn(params, tokens_BxT):
        model = nnx.merge(graphdef, params)
        return lm_loss(model, tokens_BxT[:, :-1], tokens_BxT[:, 1:], z_loss_weight=z_loss,
                       vocab_chunk=vocab_chunk)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def train_step(state, tokens_BxT, steps):
        tx, lr_schedule = make_tx(steps), make_lr(steps)
        B, T = tokens_BxT.shape
        A = grad_accum
        micro_AxBxT = jax.lax.with_sharding_constraint(
            tokens_BxT.reshape(B // A, A, T).swapaxes(0, 1), micro_sh)

        def micro(carry, tokens_bxT):
            (loss, aux), grads = grad_fn(state["params"], tokens_bxT)
            sums = (loss, aux["ce"], aux["z_loss"])
            return jax.tree.map(jnp.add, carry, (grads, sums)), None

        zeros = (jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), state["params"]),
                 (jnp.float32(0),) * 3)
        (grads, sums), _ = jax.lax.scan(micro, zeros, micro_AxBxT)
        grads = jax.tree.map(lambda g: g / A, grads)
        loss, ce, zl = (s / A for s in sums)
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = {"loss": loss, "ce": ce, "z_loss": zl, "grad_norm": optax.global_norm(grads)}
        if lr_schedule is not None:
            metrics["lr"] = lr_schedule(state["step"])
        return {"params": params, "opt_state": opt_state, "step": state["step"] + 1}, metrics

    def eval_step(params, tokens_BxT):
        return loss_fn(params, tokens_BxT)[1]["ce_per_seq_B"]

    jit_step = jax.jit(train_step, in_shardings=(state_sh, batch_sh, replicated),
                       out_shardings=(state_sh, replicated), donate_argnums=0)
    steps = np.int32(total_steps or 0)
    return TrainSetup(
        graphdef=graphdef,
        state_shardings=state_sh,
        abstract_state=abstract_state,
        init=jax.jit(init, out_shardings=state_sh, compiler_options=_run_once_options()),
        start_from=jax.jit(lambda params: {"params": params, "opt_state": make_tx(total_steps).init(params),
                                           "step": jnp.zeros((), jnp.int32)}, out_shardings=state_sh),
        train_step=lambda state, tokens_BxT: jit_step(state, tokens_BxT, steps),
        eval_step=jax.jit(eval_step, in_shardings=(param_sh, batch_sh),
                          out_shardings=NamedSharding(mesh, P(LOGICAL_RULES["batch"]))),
        batch_sharding=batch_sh,
    )


def global_batch(local_BxT: np.ndarray, sharding: NamedSharding, global_rows: int) -> jax.Array:
    """This process's rows -> the global (rows, T) array laid out by ``sharding``."""
    return jax.make_array_from_process_local_data(sharding, local_BxT, (global_rows, local_BxT.shape[1]))


def to_host(x: jax.Array) -> np.ndarray:
    """A global array, gathered whole onto every process."""
    if x.is_fully_addressable:
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
