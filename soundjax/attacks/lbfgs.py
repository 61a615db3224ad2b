"""Szegedy et al.'s targeted box-constrained L-BFGS attack (2014), with optax's L-BFGS."""

import jax
import jax.numpy as jnp
import optax

from soundjax import checks
from soundjax.attacks.carlini_wagner import binary_search_const, tanh_box
from soundjax.types import Attack, Bounds, LogitsFn


def lbfgs(logits_fn: LogitsFn, *, initial_const: float = 1e-2, num_steps: int = 100,
          binary_search_steps: int = 5, memory_size: int = 10,
          bounds: Bounds = None) -> Attack:
  """Targeted attack minimising `c * CE(logits, target) + ||delta||^2` with L-BFGS.

  Each constant restarts L-BFGS (zoom line search) from `x`; a binary search over `c` keeps the
  closest input classified as the target. The paper's scipy `fmin_l_bfgs_b` kept the box
  [-1, 1] with bound constraints; optax's L-BFGS is unconstrained, so the box is the same tanh
  change of variables as in `carlini_wagner_l2` (identity when `bounds` is None), widened to
  contain the clean `x`. The paper used const 0.1, 2 binary-search steps and 200
  (VGG13/GCNN/CRNN) or 1000 (DenseNet) iterations.

  Args:
    logits_fn: `(params, x) -> logits` for one example.
    initial_const: first constant c, > 0.
    num_steps: L-BFGS iterations per constant, >= 1.
    binary_search_steps: number of constants tried, >= 1.
    memory_size: number of past gradient pairs L-BFGS keeps, >= 1.
    bounds: optional `(lo, hi)` box (widened to contain `x`: an out-of-box sample only moves
      towards it).

  Returns:
    `attack(params, x, target, key) -> x_adv`: the closest input found that the model labels
    `target`, or `x` when none was; `key` is unused.

  Example:
    >>> attack = lbfgs(logits_fn, initial_const=0.1, binary_search_steps=2, num_steps=200,
    ...                bounds=(-1.0, 1.0))
  """
  checks.positive("initial_const", initial_const)
  checks.integer("num_steps", num_steps)
  checks.integer("binary_search_steps", binary_search_steps)
  checks.integer("memory_size", memory_size)
  checks.bounds(bounds)
  optimizer = optax.lbfgs(memory_size=memory_size)

  def attack(params, x, target, key):
    del key
    to_w, from_w = tanh_box(bounds, x)
    w0 = to_w(x)
    x0 = from_w(w0)  # distances from the box's image of x, so the start has distance 0

    def run(const):
      def objective(w):
        x_new = from_w(w)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits_fn(params, x_new), target)
        return const * ce + jnp.sum(jnp.square(x_new - x0))

      value_and_grad = optax.value_and_grad_from_state(objective)

      def body(_, carry):
        w, state = carry
        value, grad = value_and_grad(w, state=state)
        updates, state = optimizer.update(grad, state, w, value=value, grad=grad,
                                          value_fn=objective)
        return optax.apply_updates(w, updates), state

      w, _ = jax.lax.fori_loop(0, num_steps, body, (w0, optimizer.init(w0)))
      x_new = from_w(w)
      found = jnp.argmax(logits_fn(params, x_new)) == target
      return x_new, jnp.sum(jnp.square(x_new - x0)), found

    return binary_search_const(run, x, initial_const=initial_const,
                               num_searches=binary_search_steps)

  return attack
