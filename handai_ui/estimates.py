"""The one-line estimate of a run's tokens, cost and time, shown before it is started."""

from __future__ import annotations

import json

import pandas as pd

from handai_engine import Plan
from handai_engine.batch import batch_price
from handai_estimate import estimate_run
from handai_prompts import estimate_tokens, generation_prompts, generation_rows, render_template, system_message
from providers import Price, price_for

from .services import db
from .sidebar import Choice
from .text import format_seconds, md

BATCH_TIME = "results within 24 h (batch price)"


def _price(provider: str, model: str, prices: dict, batch: bool) -> Price | None:
    price = price_for(provider, model, overrides=prices)
    return batch_price(price) if batch else price


def estimate_caption(
    rows: int, prompt_tokens: float, choice: Choice, fields: int, input_hash: str, *, batch: bool = False
) -> str:
    """Tokens, cost and time the run will take, and what the figures are based on (Markdown); a
    run sent as batches at the batch price, with no time (the provider takes up to 24 h)."""
    est = estimate_run(
        rows,
        prompt_tokens,
        concurrency=choice.concurrency,
        max_tokens=choice.max_tokens,
        fields=fields,
        price=_price(choice.provider, choice.model, db().get_setting("prices", {}), batch),
        test_stats=db().latest_test_run_stats(input_hash, choice.provider, choice.model) if input_hash else None,
    )
    cost = (
        "cost unknown (no price for this model; add one in Settings)"
        if est.cost_usd is None
        else f"about ${est.cost_usd:,.4f}"
    )
    return md(
        f"Estimate for {est.rows:,} rows: {est.tokens_in:,} tokens in, {est.tokens_out:,} out, {cost}, "
        f"{BATCH_TIME if batch else 'about ' + format_seconds(est.seconds)} — {est.basis}."
    )


def generate_estimate_caption(
    description: str,
    count: int,
    variables: dict[str, list[str]],
    schema: dict | None,
    choice: Choice,
    *,
    batch: bool = False,
) -> str:
    """The same estimate for Generate: each record's messages built as the run will build them."""
    rows = generation_rows(count, variables)
    names = [k for k in variables if rows and k in rows[0]]
    system, template = generation_prompts(description, count, names)
    system = system_message(system, schema, True)
    sample = [render_template(template, r) for r in rows[:50]] or [template]
    per_row = estimate_tokens(system) + sum(map(estimate_tokens, sample)) / len(sample)
    fields = len(schema["fields"]) if schema else 2
    return estimate_caption(count, per_row, choice, fields, "", batch=batch)


def plan_estimate_caption(plan: Plan, df: pd.DataFrame, concurrency: int, *, batch: bool = False) -> str:
    """The same estimate for a run of several models or steps, summed over its cells (every
    cell counted, so a judge of disagreements only or a step with `run_if` costs at most this).
    Each model's calls run side by side, each at `concurrency`; as batches, at the batch price."""
    sample = df.head(50).to_dict(orient="records")
    per_user = sum(estimate_tokens(json.dumps(r, ensure_ascii=False, default=str)) for r in sample) / max(
        len(sample), 1
    )
    prices = db().get_setting("prices", {})
    tokens_in = tokens_out = 0
    cost: float | None = 0.0
    seconds: dict[str, float] = {}
    for si, ai, _ in plan.cells():
        step, arm = plan.steps[si], plan.arms[ai]
        prompt = estimate_tokens(system_message(step.instruction, step.output_schema, step.json_mode)) + per_user
        est = estimate_run(
            len(df),
            prompt,
            concurrency=concurrency,
            max_tokens=arm.max_tokens,
            fields=len(step.fields),
            price=_price(arm.provider, arm.model, prices, batch),
        )
        tokens_in, tokens_out = tokens_in + est.tokens_in, tokens_out + est.tokens_out
        cost = None if cost is None or est.cost_usd is None else cost + est.cost_usd
        seconds[arm.name] = seconds.get(arm.name, 0.0) + est.seconds
    money = "cost unknown (no price for some model; add one in Settings)" if cost is None else f"about ${cost:,.4f}"
    calls = len(plan.cells())
    longest = format_seconds(max(seconds.values(), default=0))
    return md(
        f"Estimate for {len(df):,} rows × {calls} call{'s' if calls != 1 else ''} per row: at most "
        f"{tokens_in:,} tokens in, {tokens_out:,} out, {money}, {BATCH_TIME if batch else 'about ' + longest}"
        " — a rough guess from the prompt and data size; a test run shows the real figures per model."
    )
