"""Central finite differences in float64 numpy: the independent reference of the gradient tests."""

import numpy as np


def central_differences(f, arrays, eps):
  """d f / d every element of every array in `arrays`, by central differences.

  Args:
    f: a function of no arguments returning a float64 scalar, computed from `arrays`, which are
      perturbed in place one element at a time (and restored).
    arrays: writable float64 numpy arrays (0-d ones included).
    eps: the step; with float64 and inputs of unit scale, 1e-5 to 1e-6 keeps truncation and
      rounding errors near 1e-10.

  Returns:
    One gradient per array, of its shape.
  """
  grads = []
  for array in arrays:
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
      saved = array[index]
      array[index] = saved + eps
      up = f()
      array[index] = saved - eps
      grad[index] = (up - f()) / (2 * eps)
      array[index] = saved
    grads.append(grad)
  return grads
