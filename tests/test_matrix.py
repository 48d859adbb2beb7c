"""The version matrix's wiring: constraints-matrix.txt is constraints.txt without keras, and
tox.ini's keras envs write where the Makefile's gate reads."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pins(name):
    lines = (ROOT / "requirements" / name).read_text().splitlines()
    return [ln for ln in lines if ln.strip() and not ln.startswith("#")]


def test_matrix_constraints_are_the_main_ones_without_keras():
    assert pins("constraints-matrix.txt") == [p for p in pins("constraints.txt") if not p.startswith("keras==")]


def test_tox_envs_write_where_the_gate_reads():
    tox, make = (ROOT / "tox.ini").read_text(), (ROOT / "Makefile").read_text()
    assert "[testenv:keras{314,315}]" in tox and "--out reports/upgrade/{envname}" in tox
    assert "keras314: keras==3.14.1" in tox and "keras315: keras==3.15.1" in tox
    assert "reports/upgrade/keras314/report.json reports/upgrade/keras315/report.json" in make
