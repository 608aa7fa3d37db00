"""docs/reference.md is generated (gansweep list --markdown): the committed page equals the generator's output,
so it cannot drift from the config models and the registries."""
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from gan_tasks.config import EvalConfig, SweepConfig, TrainConfig
from gan_tasks.config.reference import reference_markdown
from gan_tasks.methods.catalog import LOSSES

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def test_committed_reference_is_the_generated_one():
    assert PAGE.read_text() == reference_markdown(), \
        "docs/reference.md is stale: run `gansweep list --markdown > docs/reference.md`"


def test_reference_lists_every_field_and_builtin_entry():
    page = reference_markdown()
    for model in (SweepConfig, TrainConfig, EvalConfig):
        for name in model.model_fields:
            assert f"| `{name}` |" in page, name
    for name in LOSSES.builtin_names():
        assert f"| `{name}` |" in page, name
    assert "| `steps` | int, > 0 | 2000 | generator steps |" in page  # type, range, default and doc of a field
    assert "`gp_lambda` a number in [0, 10000] (0.1 points / 10.0 images)" in page  # a default by kind of data


def test_list_markdown_prints_the_page_or_refuses_an_unknown_section():
    runner = CliRunner()
    assert runner.invoke(app, ["list", "--markdown"]).stdout == reference_markdown()
    bad = runner.invoke(app, ["list", "--markdown", "bogus"])
    assert bad.exit_code == 2 and "no reference section 'bogus'" in bad.output and "limits" in bad.output
