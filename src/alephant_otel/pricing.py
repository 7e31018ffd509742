"""Model cost from token usage with the genai-prices package.

Each model-call step gets `cost_source`:
  computed  priced here from provider, model and the token buckets (cache rates included)
  provided  the agent sent the cost (later conventions)
  unpriced  could not be priced; `unpriced_reason` says why (never a silent 0)
Steps that are not model calls carry no model cost (cost_source NULL).
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache

import genai_prices
from genai_prices import Usage, calc_price

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


@lru_cache(maxsize=65536)
def _price(provider_id: str | None, model: str, inp: int, cr: int, cw: int, out: int, day: int):
    usage = Usage(input_tokens=inp + cr + cw, cache_read_tokens=cr or None,
                  cache_write_tokens=cw or None, output_tokens=out)
    when = datetime.fromtimestamp(day * 86400, tz=timezone.utc)
    calc = calc_price(usage, model_ref=model, provider_id=provider_id, genai_request_timestamp=when)
    return calc.total_price.quantize(COST_PLACES), calc.model.id, calc.provider.id


def price_step(step: dict) -> dict:
    """Fill model_cost, cost_source, unpriced_reason, currency, priced_model, priced_provider and
    price_source of one step (in place) and return it."""
    step.setdefault("model_cost", None)
    step.setdefault("cost_source", None)
    step.setdefault("unpriced_reason", None)
    if step.get("step_kind") != "model_call":
        return step
    tokens = [step.get(f) for f in _TOKEN_FIELDS]
    reason = None
    if step.get("model") is None:
        reason = "no model on span"
    elif all(t is None for t in tokens):
        reason = "no valid token usage on span"
    if reason is None:
        inp, cr, cw, out, rs = (t or 0 for t in tokens)
        provider = step.get("provider")
        # a provider we do not know is passed as is: genai-prices knows more than our table, and
        # an unknown one leaves the step unpriced rather than priced as some other provider's model
        provider_id = PROVIDERS.get(provider, provider) if provider else None
        day = (step.get("start_time") or 0) // 86_400_000_000
        candidates = [m for m in (step.get("response_model"), step.get("request_model")) if m]
        for model in dict.fromkeys(candidates or [step["model"]]):
            try:
                cost, priced_model, priced_provider = _price(provider_id, model, inp, cr, cw, out + rs, day)
            except LookupError:
                continue
            step.update(model_cost=cost, cost_source="computed", currency="USD",
                        priced_model=priced_model, priced_provider=priced_provider,
                        price_source=PRICE_SOURCE)
            return step
        reason = f"no price for model {step['model']!r}" + (f" from provider {provider!r}" if provider else "")
    step.update(cost_source="unpriced", unpriced_reason=reason, currency=None)
    return step


def price_steps(steps: list[dict]) -> list[dict]:
    for s in steps:
        price_step(s)
    return steps
