"""The README's Supported tables are what `edgert targets --markdown` prints, generated from
the front ends' translation tables and the op registry: no op list is kept by hand."""
from __future__ import annotations

from pathlib import Path

from edgert import cli, support

REPO = Path(__file__).resolve().parents[2]
START, END = "<!-- edgert targets --markdown -->\n", "\n<!-- end of edgert targets --markdown -->"


def test_the_readme_holds_the_generated_tables():
    text = (REPO / "README.md").read_text()
    block = text[text.index(START) + len(START):text.index(END)]
    assert block == support.markdown(), "regenerate the README's block with `edgert targets --markdown`"


def test_the_command_prints_them(capsys):
    assert cli.main(["targets", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == support.markdown()
    assert "| TFLite, int8 and float32 (" in out and "| conv2d | conv | all |" in out
