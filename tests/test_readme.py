"""The README's Python examples run as written (docs that match the code)."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert python_blocks(), "README.md lost its python examples"


def test_readme_examples_run(capsys):
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    # the shapes the README prints in its comments are the ones the code prints
    for expected in re.findall(r"# (\(\d[\d, ]*\)(?: \(\d[\d, ]*\))*)", README.read_text()):
        assert expected in out, f"README promises {expected!r}, the code printed {out!r}"
