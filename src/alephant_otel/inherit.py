"""Context inheritance inside a trace, independent of arrival order. Pure functions.

A span's *chain* is, per precedence tier (see mapping/context.py), its own values merged over
its parent's chain: the nearest ancestor that has a value supplies it. The resolved value of a
field is then the first tier that has one. With no run id anywhere, the run is the trace: the
run id is the trace id (lowercase hex).
"""
from __future__ import annotations

from typing import Iterable, Mapping

from .mapping.context import N_TIERS, merge
from .semconv import INHERITED_FIELDS

Chain = list  # list of N_TIERS dicts
_FIELDS = tuple(f for f in INHERITED_FIELDS if f != "properties")
RESOLVED_FIELDS = _FIELDS + ("properties",)


FORCED, DEFAULTS = N_TIERS, N_TIERS + 1  # positions after the tiers in a span's own context


def chain(tiers: list[dict], parent_chain: Chain | None) -> Chain:
    if parent_chain is None:
        return list(tiers[:N_TIERS])
    # a chain has N_TIERS tiers; `tiers` may have more (FORCED, DEFAULTS), which zip leaves out
    return [low if not high else _merged(low, high) for low, high in zip(parent_chain, tiers)]


def _merged(low: dict, high: dict) -> dict:
    """merge(low, high), but `low` itself when `high` only repeats what it holds (the usual
    case when a trace's spans carry the same headers or baggage): the same content, and a
    chain that shares its parent's tier objects, so resolving can be memoized by identity."""
    if not high or high.items() <= low.items():  # (both empty: the parent's)
        return low
    if not low:
        return high
    return merge(low, high)


def resolve(ch: Chain, trace_id: str, own: list[dict] | None = None) -> dict:
    """Resolved context fields for a chain: {field: value} plus `properties` (a dict or None).

    `own` is the span's own context; past its tiers it may hold what the export call imposes
    (`own[FORCED]`: the virtual key's workspace, department and key id, beating anything the
    spans claim) and defaults (`own[DEFAULTS]`: the key's agent, the `default` workspace), used
    only where nothing else gives a value. Neither is inherited: each span has its own."""
    out = dict.fromkeys(RESOLVED_FIELDS)
    props = None
    for tier in reversed(ch):  # the first tier wins: apply the last first
        if tier:
            out.update(tier)
            if "properties" in tier:
                if props is None:
                    props = dict(tier["properties"])  # a copy: tiers are shared, never changed
                else:
                    props.update(tier["properties"])
    if len(out) > len(RESOLVED_FIELDS):  # a tier held a field that is not inherited
        out = {f: out[f] for f in RESOLVED_FIELDS}
    out["properties"] = props or None
    if out["run_id"] is None:
        out["run_id"] = trace_id
    if own is not None and len(own) > DEFAULTS:
        for f, v in own[DEFAULTS].items():
            if out.get(f) is None:
                out[f] = v
    if own is not None and len(own) > FORCED:
        out.update(own[FORCED])
    return out


def chains_for_trace(nodes: Mapping[str, tuple[str | None, list[dict]]],
                     known: Mapping[str, Chain]) -> dict[str, Chain]:
    """Chains for every node of one trace.

    nodes: span_id -> (parent_span_id, tiers) for the spans to compute.
    known: span_id -> chain for ancestors already computed elsewhere (e.g. a cache).
    A parent found in neither is missing: the node starts its own chain (an orphan).
    """
    out: dict[str, Chain] = {}
    for start in nodes:
        if start in out:
            continue
        # walk up to the first computed ancestor, then compute downwards (no recursion limit)
        path = []
        cur: str | None = start
        while cur is not None and cur in nodes and cur not in out and cur not in path:
            path.append(cur)
            cur = nodes[cur][0]
        base = None if cur is None else out.get(cur) if cur in out else known.get(cur)
        for sid in reversed(path):
            base = chain(nodes[sid][1], base)
            out[sid] = base
    return out


def resolve_steps(steps: Iterable[dict]) -> list[dict]:
    """Resolve inheritance within one batch of mapped steps (the library path, no store).

    Fills the resolved context fields of each step in place and returns the steps."""
    steps = list(steps)
    by_trace: dict[str, dict[str, tuple]] = {}
    for s in steps:
        by_trace.setdefault(s["trace_id"], {})[s["span_id"]] = (s["parent_span_id"], s["tiers"])
    chains = {t: chains_for_trace(nodes, {}) for t, nodes in by_trace.items()}
    for s in steps:
        s.update(resolve(chains[s["trace_id"]][s["span_id"]], s["trace_id"], s["tiers"]))
    return steps
