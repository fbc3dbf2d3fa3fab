"""tools.cli's comma-separated option values: one parser for every tool's lists."""
import pytest

from rbsf.errors import RBSFError
from tools.cli import choose, split_list


def test_split_list_strips_and_drops_empty_items_and_repeats():
    assert split_list(" a, b,,a ,c,") == ["a", "b", "c"]
    assert split_list(" , ") == []


def test_choose_keeps_the_order_given():
    assert choose("rbsf, xnor", ("teacher", "xnor", "rbsf"), "--stages") == ["rbsf", "xnor"]


@pytest.mark.parametrize("text", ["xnor,bogus", "", " , "])
def test_choose_names_the_option_and_the_choices(text):
    with pytest.raises(RBSFError, match=r"--stages wants names from teacher, xnor, rbsf"):
        choose(text, ("teacher", "xnor", "rbsf"), "--stages")
