"""scripts/soak_pairs.py's reading of its command line: which words are whose."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import soak_pairs  # noqa: E402


def test_the_soak_arguments_after_the_separator_are_not_taken_for_sides():
    own, soak = soak_pairs.split_argv(["--pairs", "2", "a=@", "b=@--no-history", "--", "--workers", "2", "--rate", "9"])
    assert own == ["--pairs", "2", "a=@", "b=@--no-history"] and soak == ["--workers", "2", "--rate", "9"]
    assert soak_pairs.split_argv(["a=@", "b=@"]) == (["a=@", "b=@"], [])


def test_a_side_is_a_checkout_or_this_one_with_arguments_and_settings():
    assert soak_pairs.side_of("old=/work/old") == soak_pairs.Side("old", Path("/work/old"), [], {})
    assert soak_pairs.side_of("on=@") == soak_pairs.Side("on", soak_pairs.ROOT, [], {})
    assert soak_pairs.side_of("cpu=@--no-history --idle-load cpu:0.3 HUBCHAT_HISTORY_SEARCH=false") == \
        soak_pairs.Side("cpu", soak_pairs.ROOT, ["--no-history", "--idle-load", "cpu:0.3"],
                        {"HUBCHAT_HISTORY_SEARCH": "false"})
