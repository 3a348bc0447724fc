"""`handai_cli.py agreement`, run as a user runs it on files written here: its exit code and printed
lines (`handai_cli.main` in this process, see `run_cli`)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import CliResult, cli_env, run_cli
from tests.stats_data import krippendorff_frame


def agreement(args: list[str], tmp_path) -> CliResult:
    return run_cli(["agreement", *args], cli_env(tmp_path / "data"))


@pytest.fixture
def semicolon_bom(tmp_path):
    """Krippendorff (2011)'s table as a European Excel export: BOM, semicolons, cp1252 not needed."""
    path = tmp_path / "coded.csv"
    frame = krippendorff_frame().assign(unit=[f"u{i:02d}" for i in range(12)])
    path.write_bytes(frame.to_csv(index=False, sep=";").encode("utf-8-sig"))
    return path


def test_json_contract_on_a_semicolon_bom_file(semicolon_bom, tmp_path):
    done = agreement([str(semicolon_bom), "--raters", "obs1", "obs2", "obs3", "obs4", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["n_units"] == 12
    assert out["percent_agreement"] == pytest.approx(0.8181818, abs=1e-7)
    assert out["krippendorff_alpha"] == pytest.approx(0.743, abs=5e-4)
    low, high = out["krippendorff_alpha_ci"]
    assert low < out["krippendorff_alpha"] < high
    assert out["fleiss_kappa"] == pytest.approx(0.7611693, abs=1e-7)
    assert out["gwet_ac1"] == pytest.approx(0.7754441, abs=1e-7)
    assert out["cohen_kappa"] is None and "exactly two" in out["undefined"]["cohen_kappa"]
    assert len(out["pairwise"]) == 6
    first = out["pairwise"][0]
    assert set(first) == {"raters", "n", "percent_agreement", "cohen_kappa"}
    assert first["raters"] == ["obs1", "obs2"] and first["n"] == 9
    assert "Gwet" in out["definitions"]["fleiss_kappa"]


def test_ordinal_interval_and_two_raters(semicolon_bom, tmp_path):
    base = [str(semicolon_bom), "--raters", "obs1", "obs2", "obs3", "obs4", "--json", "--resamples", "50"]
    ordinal = json.loads(agreement([*base, "--level", "ordinal", "--order", "1,2,3,4,5"], tmp_path).stdout)
    assert ordinal["krippendorff_alpha"] == pytest.approx(0.815, abs=5e-4)
    interval = json.loads(agreement([*base, "--level", "interval"], tmp_path).stdout)
    assert interval["krippendorff_alpha"] == pytest.approx(0.849, abs=5e-4)
    two = json.loads(agreement([str(semicolon_bom), "--raters", "obs1", "obs2", "--json"], tmp_path).stdout)
    assert two["cohen_kappa"] == pytest.approx(two["pairwise"][0]["cohen_kappa"])


def test_gold_and_multi_label(tmp_path):
    path = tmp_path / "gold.csv"
    path.write_text("id,m1,m2,expert\n1,a,a,a\n2,b,a,b\n3,a,zz,a\n4,b,b,b\n5,,b,\n", encoding="utf-8")
    done = agreement([str(path), "--raters", "m1", "m2", "--gold", "expert", "--labels", "a,b", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    gold = json.loads(done.stdout)["gold"]
    assert set(gold) == {"m1", "m2"}
    assert gold["m1"]["accuracy"] == 1.0 and gold["m1"]["invalid"] == 0
    assert gold["m2"]["accuracy"] == 0.5 and gold["m2"]["invalid"] == 1
    assert set(gold["m2"]) >= {"accuracy", "macro_f1", "cohen_kappa", "invalid", "per_code"}
    assert gold["m2"]["per_code"]["b"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    multi = tmp_path / "multi.csv"
    multi.write_text('a,b\n"x; y",x\nx,x\n"y;z","z; y"\n', encoding="utf-8")
    done = agreement([str(multi), "--raters", "a", "b", "--multi-label", "--json"], tmp_path)
    out = json.loads(done.stdout)
    assert out["krippendorff_alpha_masi"] is not None and out["krippendorff_alpha_masi_ci"] is not None
    assert out["per_code"]["x"]["krippendorff_alpha"] is not None and "y" in out["per_code"]


def test_human_table_lists_every_figure_with_n_and_definition(semicolon_bom, tmp_path):
    done = agreement([str(semicolon_bom), "--raters", "obs1", "obs2", "obs3", "obs4", "--resamples", "50"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Krippendorff's alpha (nominal)" in out and "0.743" in out and "n units" in out
    assert "Definitions:" in out and "Gwet's p_a" in out and "undefined*" in out
    assert "obs1, obs2" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--raters", "obs1", "nobody"], "Unknown column(s): nobody"),
        (["--raters", "obs1", "obs2", "--level", "ordinal"], "needs the order"),
        (["--raters", "obs1", "--gold", "obs2"], "--gold needs the label set"),
        (["--raters", "obs1", "--level", "ordinal", "--order", "1,2"], "not in the ordinal order"),
    ],
)
def test_bad_input_exits_2_with_one_message(semicolon_bom, tmp_path, extra, message):
    done = agreement([str(semicolon_bom), *extra], tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_missing_file_exits_2(tmp_path):
    done = agreement([str(tmp_path / "nope.csv"), "--raters", "a"], tmp_path)
    assert done.returncode == 2 and "No such file" in done.stderr
