"""Training programs by name: the default program keeps every trial id, an unknown name or a combination
a program cannot run is refused naming the field, and `gansweep list programs` lists them."""
from __future__ import annotations

import subprocess
import sys

import pytest

from gan_tasks.config import ConfigError, expand_grid, parse_config
from gan_tasks.methods.programs import DEFAULT_PROGRAM, PROGRAMS
from tests.conftest import tiny_config


def test_default_program_keeps_trial_ids():
    # The ids of tiny_config's trials before programs existed (commit a283bfb): unchanged.
    old = ["444711722814", "c1bdb7bb57e1"]
    assert [t.trial_id for t in expand_grid(parse_config(tiny_config()))] == old
    assert [t.trial_id for t in expand_grid(parse_config(tiny_config(program=DEFAULT_PROGRAM)))] == old
    assert expand_grid(parse_config(tiny_config()))[0].cell == "non-saturating/adam"


def test_unknown_program_lists_the_valid_ones():
    with pytest.raises(ConfigError) as e:
        parse_config(tiny_config(program="cyclegan-typo"))
    assert "  program: unknown program 'cyclegan-typo'; valid: " in str(e.value)
    assert all(n in str(e.value) for n in PROGRAMS.names())


def test_list_programs():
    r = subprocess.run([sys.executable, "-m", "flows.cli", "list", "programs"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert all(n in r.stdout for n in PROGRAMS.names()) and "pack_seeds" in r.stdout
