"""Model cost from token usage with the genai-prices package.

Each model-call step gets `cost_source`:
  computed  priced here from provider, model and the token buckets (cache rates included)
  provided  the span brought its own cost (llm.cost.total, operation.cost, gen_ai.usage.cost,
            alephant.cost.amount, or a mapping rule), which counts by default
  unpriced  could not be priced; `unpriced_reason` says why (never a silent 0)
`computed_cost` and `provided_cost` are both kept, so their difference is queryable.
Other steps carry no model cost; one that brings its own cost has cost_source `provided`.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache

import genai_prices
from genai_prices import Usage, calc_price
from genai_prices.types import TieredPrices

from .price_list import PriceList

PRICE_SOURCE = f"genai-prices {genai_prices.__version__}"
COST_PLACES = Decimal("0.000000000001")  # DECIMAL(18, 12)

# gen_ai.provider.name -> genai-prices provider id
PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "cohere": "cohere",
    "mistral_ai": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "perplexity": "perplexity",
    "moonshot_ai": "moonshotai",
}

_TOKEN_FIELDS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
_NO_TOKENS = (None,) * len(_TOKEN_FIELDS)


_UNIT = 1000


@lru_cache(maxsize=4096)
def _model_prices(provider_id: str | None, model: str, day: int):
    """genai-prices' model lookup (the slow part), once per provider, model and day:
    (ModelPrice, model id, provider id, linear rates or None, input-token limit of the rates).
    Rates are per token for (uncached input, cache read, cache write, output) plus a per-call
    base, measured on the model's own price below its first tier (tiers start above a number
    of input tokens), and kept only when they reproduce it exactly."""
    when = datetime.fromtimestamp(day * 86400, tz=timezone.utc)
    calc = calc_price(Usage(input_tokens=1, output_tokens=1), model_ref=model, provider_id=provider_id,
                      genai_request_timestamp=when)
    mp = calc.model_price

    def cost(inp=0, cr=0, cw=0, out=0) -> Decimal:
        return mp.calc_price(Usage(input_tokens=inp + cr + cw, cache_read_tokens=cr or None,
                                   cache_write_tokens=cw or None, output_tokens=out))["total_price"]
    starts = [t.start for v in vars(mp).values() if isinstance(v, TieredPrices) for t in v.tiers]
    limit = min(starts) if starts else None
    rates = None
    try:
        base = cost()
        rates = (base, (cost(inp=_UNIT) - base) / _UNIT, (cost(cr=_UNIT) - base) / _UNIT,
                 (cost(cw=_UNIT) - base) / _UNIT, (cost(out=_UNIT) - base) / _UNIT)
        probe = (1234, 567, 89, 4321)
        if (limit is not None and limit < 2 * _UNIT) or _linear(rates, *probe) != cost(*probe):
            rates = None  # not linear: price each call with genai-prices
    except Exception:
        rates = None
    return mp, calc.model.id, calc.provider.id, rates, limit


def _linear(rates, inp: int, cr: int, cw: int, out: int) -> Decimal:
    base, ri, rcr, rcw, ro = rates
    return base + inp * ri + cr * rcr + cw * rcw + out * ro


def _price(provider_id: str | None, model: str, inp: int, cr: int, cw: int, out: int, day: int):
    mp, model_id, provider, rates, limit = _model_prices(provider_id, model, day)
    if rates is not None and (limit is None or inp + cr + cw <= limit):
        total = _linear(rates, inp, cr, cw, out)
    else:
        total = mp.calc_price(Usage(input_tokens=inp + cr + cw, cache_read_tokens=cr or None,
                                    cache_write_tokens=cw or None, output_tokens=out))["total_price"]
    return total.quantize(COST_PLACES), model_id, provider


COST_PREFERENCES = ("provided", "computed")
_NO_COSTS = dict.fromkeys(("model_cost", "computed_cost", "cost_source", "unpriced_reason", "currency",
                           "priced_model", "priced_provider", "price_source", "tool_cost", "tool_cost_currency"))
TOOL_KINDS = ("tool_call", "api_call")


def price_step(step: dict, prefer: str = "provided", prices: PriceList | None = None) -> dict:
    """Fill the cost fields of one step (in place) and return it.

    Model calls: `computed_cost` from tokens (price-list overrides first, then genai-prices);
    with a provided cost too, both are kept and `prefer` says which counts as `model_cost`.
    Tool and API calls: a provided cost wins, else the price list, else unpriced. Any other
    step that brings its own cost carries it as `tool_cost` (external spend of the run).
    """
    if step.keys().isdisjoint(_NO_COSTS):  # a newly mapped step (not one being repriced)
        step.update(_NO_COSTS)
    else:
        for f in _NO_COSTS:
            step.setdefault(f, None)
    kind = step.get("step_kind")
    provided = step.get("provided_cost")
    if kind == "model_call":
        return _price_model_call(step, prefer, prices)
    if provided is not None:
        step.update(tool_cost=provided, tool_cost_currency=step.get("provided_cost_currency") or "USD",
                    cost_source="provided", currency=step.get("provided_cost_currency") or "USD")
    elif kind in TOOL_KINDS:
        amount, what = _list_price(step, prices)
        if amount is not None:
            step.update(tool_cost=amount.quantize(COST_PLACES), tool_cost_currency=prices.currency,
                        cost_source="computed", currency=prices.currency, price_source=prices.source)
        else:
            step.update(cost_source="unpriced", unpriced_reason=f"no price for {what} (add it to a price list)")
    return step


def _list_price(step: dict, prices: PriceList | None):
    if step["step_kind"] == "tool_call":
        what = f"tool {step.get('tool_name')!r}"
        return (prices.tool_price(step.get("tool_name")) if prices else None), what
    what = f"API {step.get('api_method') or ''} {step.get('api_host')!r}".replace("  ", " ")
    return (prices.api_price(step.get("api_host"), step.get("api_method")) if prices else None), what


def _price_model_call(step: dict, prefer: str, prices: PriceList | None) -> dict:
    provided = step.get("provided_cost")
    reason, computed_currency = _compute(step, prices)
    computed = step["computed_cost"]
    if provided is not None and (prefer == "provided" or computed is None):
        step.update(model_cost=provided, cost_source="provided", unpriced_reason=None,
                    currency=step.get("provided_cost_currency") or "USD")
    elif computed is not None:
        step.update(model_cost=computed, cost_source="computed", unpriced_reason=None, currency=computed_currency)
    else:
        step.update(model_cost=None, cost_source="unpriced", unpriced_reason=reason, currency=None)
    return step


def _compute(step: dict, prices: PriceList | None = None) -> tuple[str | None, str]:
    """Set computed_cost and the price's provenance; return (why it could not be, if it could
    not; the currency of the computed figure)."""
    step.update(computed_cost=None, priced_model=None, priced_provider=None, price_source=None)
    tokens = tuple(map(step.get, _TOKEN_FIELDS))
    if step.get("model") is None:
        return "no model on span", "USD"
    if tokens == _NO_TOKENS:
        return "no valid token usage on span", "USD"
    inp, cr, cw, out, rs = (t or 0 for t in tokens)
    provider = step.get("provider")
    candidates = []  # response model, request model, model: each once
    for m in (step.get("response_model"), step.get("request_model"), step["model"]):
        if m and m not in candidates:
            candidates.append(m)
    override = None
    if prices is not None:
        for model in candidates:
            override = prices.model_price(provider, model)
            if override is not None:
                break
    if override is not None and override.discount is None:
        step.update(computed_cost=override.cost(inp, cr, cw, out + rs).quantize(COST_PLACES),
                    priced_model=model, priced_provider=provider, price_source=prices.source)
        return None, prices.currency
    # a provider we do not know is passed as is: genai-prices knows more than our table, and
    # an unknown one leaves the step unpriced rather than priced as some other provider's model
    provider_id = PROVIDERS.get(provider, provider) if provider else None
    day = (step.get("start_time") or 0) // 86_400_000_000
    for model in candidates:
        try:
            cost, priced_model, priced_provider = _price(provider_id, model, inp, cr, cw, out + rs, day)
        except LookupError:
            continue
        source = PRICE_SOURCE
        if override is not None:
            cost = (cost * (1 - override.discount)).quantize(COST_PLACES)
            source = f"{PRICE_SOURCE} less {override.discount * 100:g}% ({prices.source})"
        step.update(computed_cost=cost, priced_model=priced_model, priced_provider=priced_provider,
                    price_source=source)
        return None, "USD"
    return f"no price for model {step['model']!r}" + (f" from provider {provider!r}" if provider else ""), "USD"


def price_steps(steps: list[dict], prefer: str = "provided", prices: PriceList | None = None) -> list[dict]:
    for s in steps:
        price_step(s, prefer, prices)
    return steps
