"""The reliability report: every figure of one analysis, with the settings that produced it, and its JSON
form (the CLI's contract: these key names are relied on by scripts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from research.stats import writers
from research.stats.figure import Figure
from research.stats.gold import GoldResult
from research.stats.groups import GroupPair

HOW_TO_READ = writers.HOW_TO_READ


@dataclass(frozen=True)
class PairResult:
    raters: tuple[str, str]
    n: int
    percent_agreement: Figure
    cohen_kappa: Figure


@dataclass(frozen=True)
class Row:
    """One figure in flat form, for CSV and tables."""

    scope: str
    raters: str
    statistic: str
    figure: Figure


@dataclass(frozen=True)
class Report:
    settings: dict[str, Any]
    n_units: int
    overall: dict[str, Figure]  # JSON key -> figure
    pairwise: list[PairResult] = field(default_factory=list)
    per_code: dict[str, dict[str, Figure]] = field(default_factory=dict)
    gold: dict[str, GoldResult] = field(default_factory=dict)
    group_pairs: list[GroupPair] = field(default_factory=list)
    group_alphas: dict[str, Figure] = field(default_factory=dict)

    def rows(self) -> list[Row]:
        everyone = ", ".join(self.settings["raters"])
        rows = [Row("overall", everyone, key, f) for key, f in self.overall.items()]
        for p in self.pairwise:
            names = ", ".join(p.raters)
            rows += [Row("pair", names, "percent_agreement", p.percent_agreement)]
            rows += [Row("pair", names, "cohen_kappa", p.cohen_kappa)]
        for code, figures in self.per_code.items():
            rows += [Row(f"code: {code}", everyone, key, f) for key, f in figures.items()]
        for g in self.group_pairs:
            scope = f"groups: {g.groups[0]}–{g.groups[1]}"
            rows += [
                Row(scope, "", "mean_cohen_kappa", g.cohen_kappa),
                Row(scope, "", "mean_percent_agreement", g.percent_agreement),
            ]
        rows += [Row("group alpha", name, "krippendorff_alpha", f) for name, f in self.group_alphas.items()]
        for rater, g in self.gold.items():
            rows += [Row("gold", rater, key, getattr(g, key)) for key in ("accuracy", "macro_f1", "cohen_kappa")]
        return rows

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_units": self.n_units}
        for key, f in self.overall.items():
            out[key] = f.value
            if key.startswith("krippendorff_alpha"):
                out[f"{key}_ci"] = list(f.ci) if f.ci else None
        out["pairwise"] = [
            {
                "raters": list(p.raters),
                "n": p.n,
                "percent_agreement": p.percent_agreement.value,
                "cohen_kappa": p.cohen_kappa.value,
            }
            for p in self.pairwise
        ]
        if self.per_code:
            out["per_code"] = {
                code: {key: f.value for key, f in figures.items()} | {"n": figures["krippendorff_alpha"].n_units}
                for code, figures in self.per_code.items()
            }
        if self.gold:
            out["gold"] = {rater: _gold_json(g) for rater, g in self.gold.items()}
        if self.group_pairs or self.group_alphas:
            out["groups"] = {
                "pairs": [
                    {
                        "groups": list(g.groups),
                        "n_pairs": g.n_pairs,
                        "cohen_kappa": g.cohen_kappa.value,
                        "percent_agreement": g.percent_agreement.value,
                    }
                    for g in self.group_pairs
                ],
                "krippendorff_alpha": {name: f.value for name, f in self.group_alphas.items()},
            }
        out["n_ratings"] = {key: f.n_ratings for key, f in self.overall.items()}
        out["n_units_used"] = {key: f.n_units for key, f in self.overall.items()}
        out["definitions"] = {key: f.definition for key, f in self.overall.items()}
        out["missing"] = {key: f.missing for key, f in self.overall.items()}
        out["ci_method"] = {key: f.ci_method for key, f in self.overall.items() if f.ci_method}
        out["undefined"] = {key: f.undefined for key, f in self.overall.items() if f.undefined}
        out["settings"] = self.settings
        return out

    def to_csv(self, guard: bool = True) -> bytes:
        return writers.report_csv(self, guard=guard)

    def to_markdown(self) -> str:
        return writers.report_markdown(self)


def _gold_json(g: GoldResult) -> dict[str, Any]:
    return {
        "n": g.n_units,
        "accuracy": g.accuracy.value,
        "macro_f1": g.macro_f1.value,
        "cohen_kappa": g.cohen_kappa.value,
        "invalid": g.invalid,
        "missing": g.missing,
        "per_code": {
            s.code: {"precision": s.precision, "recall": s.recall, "f1": s.f1, "support": s.support} for s in g.per_code
        },
        "confusion": {
            "gold": [str(i) for i in g.confusion.index],
            "predicted": [str(c) for c in g.confusion.columns],
            "counts": g.confusion.to_numpy().tolist(),
        },
        "undefined": {
            key: getattr(g, key).undefined
            for key in ("accuracy", "macro_f1", "cohen_kappa")
            if getattr(g, key).undefined
        },
    }
