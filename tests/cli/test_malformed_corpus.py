"""The malformed-model corpus (scripts/malformed_models.py): every model, each with one field
broken, is refused by `edgert inspect` and by `edgert build` with exit 2 and a message naming
that field; none compiles, none is reported as an edgert bug."""
from __future__ import annotations

import json

import pytest

from edgert import cli
from tests.support.scripts import load

corpus = load("scripts/malformed_models.py")
CASES = sorted([f"{n}.tflite" for n in (*corpus.TFLITE, *corpus.RAW_TFLITE)] +
               [f"{n}.onnx" for n in (*corpus.ONNX, *corpus.RAW_ONNX)])


def test_the_corpus_covers_both_formats_and_at_least_sixty_fields():
    assert len(CASES) >= 60
    assert sum(c.endswith(".onnx") for c in CASES) >= 15 and sum(c.endswith(".tflite") for c in CASES) >= 45


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = tmp_path_factory.mktemp("malformed")
    expected = corpus.write(out)
    assert sorted(expected) == CASES and json.loads((out / "expected.json").read_text()) == expected
    return out, expected


@pytest.mark.parametrize("case", CASES)
def test_a_malformed_model_is_refused_naming_its_field(models, case, capsys, tmp_path):
    folder, expected = models
    for argv in (["inspect", str(folder / case)], ["build", str(folder / case), "-o", str(tmp_path / "b")]):
        code = cli.main(argv)
        err = capsys.readouterr().err
        assert code == 2, f"{argv[0]} {case}: exit {code}: {err}"
        assert expected[case] in err, f"{argv[0]} {case}: {err}"
        assert "internal error" not in err and "Traceback" not in err
    assert not (tmp_path / "b" / "report.json").exists()
