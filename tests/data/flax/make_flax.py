"""Writes flax_model.msgpack and expected.json with Flax itself (`flax.serialization.to_bytes`)."""

import json

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import serialization


class Net(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(16)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.Embed(10, 4)(jnp.zeros((1,), jnp.int32)).sum() + nn.Dense(
            4, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16
        )(x)
        return x


variables = Net().init(jax.random.PRNGKey(0), jnp.ones((1, 8)))
with open("flax_model.msgpack", "wb") as f:
    f.write(serialization.to_bytes(variables))
leaves = jax.tree_util.tree_leaves_with_path(variables)
expected = {".".join(str(getattr(k, "key", k)) for k in path): [list(v.shape), str(v.dtype)] for path, v in leaves}
counts = {
    "leaves": expected,
    "params": sum(v.size for v in jax.tree_util.tree_leaves(variables["params"])),
    "total": sum(v.size for v in jax.tree_util.tree_leaves(variables)),
}
with open("expected.json", "w") as f:
    json.dump(counts, f, indent=1)
