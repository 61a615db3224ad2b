"""Event matching of sed_eval 0.2.1's `EventBasedMetrics.evaluate`, for the events of one file.

An estimate hits a reference event when the labels agree, the onsets differ by at most `t_collar`
and the offsets by at most `max(t_collar, percentage_of_length * reference length)` (either
condition can be switched off). True positives are a maximum matching of hits ("optimal") or
sed_eval's first-come rule ("greedy"). Substitutions are then counted greedily among the left-over
events, labels ignored, so *which* maximum matching is chosen matters: `_hopcroft_karp` follows
sed_eval's `util.bipartite_match` (mir_eval's port of D. Eppstein's Hopcroft-Karp) step by step so
the same events are left over. Host-side numpy, run once on decoded events.
"""

from typing import Dict, List, NamedTuple, Tuple

import numpy as np

MATCHING_TYPES = ("optimal", "greedy")


class Events(NamedTuple):
  """One file's events as arrays: onsets and offsets in seconds, label indices (int)."""
  onset: np.ndarray
  offset: np.ndarray
  label: np.ndarray


def close_enough(reference: Events, estimated: Events, *, t_collar: float,
                 percentage_of_length: float, evaluate_onset: bool,
                 evaluate_offset: bool) -> np.ndarray:
  """[n_reference, n_estimated] bools: sed_eval's onset and offset conditions, labels ignored."""
  close = np.ones((reference.onset.size, estimated.onset.size), bool)
  if evaluate_onset:
    close &= np.abs(reference.onset[:, None] - estimated.onset[None, :]) <= t_collar
  if evaluate_offset:
    tolerance = np.maximum(t_collar, percentage_of_length * (reference.offset - reference.onset))
    close &= np.abs(reference.offset[:, None] - estimated.offset[None, :]) <= tolerance[:, None]
  return close


def greedy_pairs(mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """sed_eval's greedy rule: each row in turn takes the first free column it hits.

  Returns:
    (rows_used, columns_used), boolean masks of the paired rows and columns.
  """
  rows_used = np.zeros(mask.shape[0], bool)
  columns_used = np.zeros(mask.shape[1], bool)
  for row in range(mask.shape[0]):
    free = np.flatnonzero(mask[row] & ~columns_used)
    if free.size:
      rows_used[row] = columns_used[free[0]] = True
  return rows_used, columns_used


def _hopcroft_karp(graph: Dict[int, List[int]]) -> Dict[int, int]:
  """Maximum matching of `graph` (estimate -> hit references), as `{reference: estimate}`.

  The dictionary and list orders reproduce sed_eval's `bipartite_match`, so ties between maximum
  matchings are broken the same way.
  """
  matching = {}
  for u in graph:  # Greedy start.
    for v in graph[u]:
      if v not in matching:
        matching[v] = u
        break
  free = object()  # Marks a left vertex in the first layer.
  while True:
    # Layer the residual graph: pred[u] is u's right-vertex parent, preds[v] its left parents.
    preds = {}
    unmatched = []
    pred = {u: free for u in graph}
    for v in matching:
      del pred[matching[v]]
    layer = list(pred)
    while layer and not unmatched:
      new_layer = {}
      for u in layer:
        for v in graph[u]:
          if v not in preds:
            new_layer.setdefault(v, []).append(u)
      layer = []
      for v in new_layer:
        preds[v] = new_layer[v]
        if v in matching:
          layer.append(matching[v])
          pred[matching[v]] = v
        else:
          unmatched.append(v)
    if not unmatched:
      return matching

    def augment(v):
      """Searches back through the layers for an alternating path ending at v."""
      for u in preds.pop(v, ()):
        if u in pred:
          pu = pred.pop(u)
          if pu is free or augment(pu):
            matching[v] = u
            return True
      return False

    for v in unmatched:
      augment(v)


def maximum_pairs(mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """A maximum matching of rows (references) to columns (estimates), chosen as sed_eval does.

  Returns:
    (rows_used, columns_used), boolean masks of the paired rows and columns.
  """
  graph = {}
  for row, column in zip(*np.nonzero(mask)):  # Row-major, like sed_eval's numpy.where.
    graph.setdefault(int(column), []).append(int(row))
  matching = _hopcroft_karp(graph)
  rows_used = np.zeros(mask.shape[0], bool)
  columns_used = np.zeros(mask.shape[1], bool)
  rows_used[list(matching)] = True
  columns_used[list(matching.values())] = True
  return rows_used, columns_used


def match_file(reference: Events, estimated: Events, *, t_collar: float,
               percentage_of_length: float, evaluate_onset: bool, evaluate_offset: bool,
               event_matching_type: str) -> Tuple[np.ndarray, int]:
  """Matches one file's events as sed_eval does.

  Returns:
    (matched, substitutions): which reference events are true positives, and the number of
    substitutions (left-over pairs meeting the time conditions with different labels). sed_eval
    matches each class again for its class-wise counts; hits never cross labels, so the classes of
    this matching's true positives give the same counts.
  """
  close = close_enough(reference, estimated, t_collar=t_collar,
                       percentage_of_length=percentage_of_length,
                       evaluate_onset=evaluate_onset, evaluate_offset=evaluate_offset)
  hit = close & (reference.label[:, None] == estimated.label[None, :])
  pairs = maximum_pairs if event_matching_type == "optimal" else greedy_pairs
  matched, used = pairs(hit)
  substituted, _ = greedy_pairs(close[np.ix_(~matched, ~used)])
  return matched, int(substituted.sum())
