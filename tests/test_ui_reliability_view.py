"""The reliability report on screen, rendered by AppTest from a real report."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page() -> None:
    import pandas as pd

    from handai_ui.reliability_view import show_report
    from research.stats import reliability

    frame = pd.DataFrame(
        {
            "h1": ["pos", "neg", "pos", "neu", "neg", "pos"],
            "h2": ["pos", "neg", "neg", "neu", "neg", "pos"],
            "gpt": ["pos", "neg", "pos", "meh", None, "pos"],
            "gold": ["pos", "neg", "pos", "neu", "neg", "neg"],
        }
    )
    report = reliability(
        frame,
        raters=["h1", "h2", "gpt"],
        gold="gold",
        labels=["pos", "neg", "neu"],
        groups={"h1": "human", "h2": "human", "gpt": "model"},
        resamples=100,
    )
    show_report(report, key="rel")


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [df.value.to_csv() for df in at.dataframe]
    parts += [f"{m.label}={m.value}" for m in at.metric]
    return "\n".join(parts)


def test_report_with_gold_and_groups_renders():
    at = AppTest.from_function(_page, default_timeout=30).run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "Krippendorff's alpha (nominal)" in text and "Fleiss' kappa" in text and "Gwet's AC1" in text
    assert "undefined,there are 3 raters" in text  # Cohen's kappa overall: "undefined", then why
    assert "Model–human vs human–human" in text and "human – model" in text and "human only" in text
    assert "gpt against gold" in text and "invalid (off-label)=1" in text
    assert "Percentile bootstrap" in text and "pairwise definition" in text
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Report (CSV)", "Report (Markdown)"]
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3  # one confusion heat map per rater
    spec = charts[0].proto.spec
    assert '"rect"' in spec and "(off-label)" in spec and "(missing)" in spec


def test_multi_label_report_shows_per_code_table():
    def page() -> None:
        import pandas as pd

        from handai_ui.reliability_view import show_report
        from research.stats import reliability

        frame = pd.DataFrame({"a": ["x; y", "x", "y"], "b": ["x", "x", "y; z"]})
        show_report(reliability(frame, multi_label=True, resamples=20), key="ml")

    at = AppTest.from_function(page, default_timeout=30).run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "Each code on its own" in text and "MASI" in text
