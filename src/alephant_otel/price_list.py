"""A price list file: what tools and external APIs cost per call, and model price overrides
(negotiated rates, self-hosted or fine-tuned models, a discount per provider).

    version: acme-2026-11          # recorded with every figure priced from this file
    currency: USD                  # currency of the amounts below (default USD)
    tools:                         # per call, by tool name
      web_search: 0.01
      get_weather: 0
    apis:                          # per call, by host and optionally method; first match wins
      - {host: api.exa.ai, amount: 0.005}
      - {host: maps.googleapis.com, method: GET, amount: 0.002}
    models:                        # first match wins; model is a name or a glob (fnmatch)
      - {provider: openai, model: gpt-4o-mini, input: 0.10, output: 0.40, cache_read: 0.05}
      - {model: "ft:gpt-4o-mini:acme:*", input: 0.30, output: 1.20}   # USD per million tokens
      - {provider: anthropic, discount: 0.10}                         # 10% off the public price

Model rates are per million tokens: `input` (uncached input), `output` (also reasoning),
`cache_read` and `cache_write` (default: the input rate). A bad file raises PriceListError
naming the file, the entry and the reason.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import AlephantError
from .yaml_files import parse_yaml, read_yaml

MILLION = Decimal(1_000_000)


class PriceListError(AlephantError):
    pass


@dataclass
class ModelPrice:
    provider: str | None
    model: str | None
    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    discount: Decimal | None = None

    def matches(self, provider: str | None, model: str) -> bool:
        if self.provider is not None and self.provider != provider:
            return False
        return self.model is None or fnmatch.fnmatchcase(model, self.model)

    def cost(self, inp: int, cr: int, cw: int, out: int) -> Decimal:
        cr_rate = self.cache_read if self.cache_read is not None else self.input
        cw_rate = self.cache_write if self.cache_write is not None else self.input
        return (inp * self.input + cr * cr_rate + cw * cw_rate + out * self.output) / MILLION


@dataclass
class PriceList:
    version: str
    currency: str = "USD"
    tools: dict[str, Decimal] = field(default_factory=dict)
    apis: list[tuple[str, str | None, Decimal]] = field(default_factory=list)
    models: list[ModelPrice] = field(default_factory=list)

    @property
    def source(self) -> str:
        return f"price list {self.version}"

    def tool_price(self, tool: str | None) -> Decimal | None:
        return self.tools.get(tool) if tool is not None else None

    def api_price(self, host: str | None, method: str | None) -> Decimal | None:
        if host is None:
            return None
        for h, m, amount in self.apis:
            if fnmatch.fnmatchcase(host, h) and (m is None or (method or "").upper() == m):
                return amount
        return None

    def model_price(self, provider: str | None, model: str) -> ModelPrice | None:
        for mp in self.models:
            if mp.matches(provider, model):
                return mp
        return None

    @classmethod
    def load(cls, path: str | Path) -> "PriceList":
        return cls._build(*read_yaml(path, PriceListError))

    @classmethod
    def parse(cls, text: str, source: str = "<prices>") -> "PriceList":
        return cls._build(parse_yaml(text, source, PriceListError), source)

    @classmethod
    def _build(cls, doc, source: str) -> "PriceList":
        if not isinstance(doc, dict):
            raise PriceListError(f"{source}: expected a mapping with version, tools, apis, models")
        extra = set(doc) - {"version", "currency", "tools", "apis", "models"}
        if extra:
            raise PriceListError(f"{source}: unknown key(s): {', '.join(sorted(extra))}")
        if not doc.get("version"):
            raise PriceListError(f"{source}: `version` is required (it is recorded with every figure)")
        pl = cls(str(doc["version"]), str(doc.get("currency") or "USD").upper())
        for name, amount in (doc.get("tools") or {}).items():
            pl.tools[str(name)] = _amount(amount, f"{source}: tools[{name!r}]")
        for i, entry in enumerate(doc.get("apis") or []):
            where = f"{source}: apis[{i}]"
            if not isinstance(entry, dict) or "host" not in entry or "amount" not in entry:
                raise PriceListError(f"{where}: needs host and amount")
            if set(entry) - {"host", "method", "amount"}:
                raise PriceListError(f"{where}: unknown key(s): {', '.join(sorted(set(entry) - {'host', 'method', 'amount'}))}")
            method = str(entry["method"]).upper() if entry.get("method") else None
            pl.apis.append((str(entry["host"]), method, _amount(entry["amount"], where)))
        for i, entry in enumerate(doc.get("models") or []):
            pl.models.append(_model(entry, f"{source}: models[{i}]"))
        return pl


def _amount(raw: Any, where: str) -> Decimal:
    try:
        d = Decimal(str(raw))
    except InvalidOperation:
        d = Decimal(-1)
    if isinstance(raw, bool) or not d.is_finite() or d < 0:
        raise PriceListError(f"{where}: {raw!r} is not a non-negative amount")
    return d


def _model(entry: Any, where: str) -> ModelPrice:
    keys = {"provider", "model", "input", "output", "cache_read", "cache_write", "discount"}
    if not isinstance(entry, dict):
        raise PriceListError(f"{where}: must be a mapping")
    if set(entry) - keys:
        raise PriceListError(f"{where}: unknown key(s): {', '.join(sorted(set(entry) - keys))}")
    if "provider" not in entry and "model" not in entry:
        raise PriceListError(f"{where}: needs a provider, a model, or both")
    mp = ModelPrice(entry.get("provider"), entry.get("model"))
    if "discount" in entry:
        if any(k in entry for k in ("input", "output", "cache_read", "cache_write")):
            raise PriceListError(f"{where}: give rates or a discount, not both")
        mp.discount = _amount(entry["discount"], where)
        if mp.discount > 1:
            raise PriceListError(f"{where}: discount is a fraction between 0 and 1")
        return mp
    if "input" not in entry or "output" not in entry:
        raise PriceListError(f"{where}: needs input and output rates (per million tokens) or a discount")
    for k in ("input", "output", "cache_read", "cache_write"):
        if k in entry:
            setattr(mp, k, _amount(entry[k], where))
    return mp
