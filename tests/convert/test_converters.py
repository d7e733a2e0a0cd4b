"""The converter registry: every `--from` kind is a `Converter` in
`tagger.convert.CONVERTERS`, and convert_weights.py's flags, their checks
and a pretrained entry's tags come from it alone."""

import dataclasses

import pytest

from tagger import convert
from tagger.commands import convert_weights
from tagger.convert.converter import Converter, Option
from tagger.errors import UserError
from tagger.pretrained.registry import MODELS

TOY = Converter("toy", lambda path, colour: None,
                lambda options: (f"{options['colour']}-tone", "silence"),
                options=(Option("colour", ("red", "blue"), required=True, help="the colour"),))


@pytest.fixture
def toy():
    convert.CONVERTERS.register(TOY.name, TOY)
    yield TOY
    convert.CONVERTERS.unregister(TOY.name)


def test_a_registered_kind_is_a_flag_checked_like_the_others(toy, tmp_path):
    original = tmp_path / "toy.bin"
    original.write_bytes(b"toy")
    out = tmp_path / "toy.keras"
    for argv, message in (
            (["--from", "toy"], "--from toy needs --colour, one of red, blue; got None"),
            (["--from", "resemul", "--colour", "red"],
             "--colour applies to --from toy only; leave it out"),
            (["--from", "toy", "--colour", "red", "--block", "se"],
             "--block applies to --from resemul only; leave it out"),
            (["--from", "toy", "--colour", "red", "--model", "fcn"],
             "--model applies to --from zoo and --from musicnn only; leave it out"),
            (["--from", "toy", "--colour", "red", "--dataset", "msd"],
             "--dataset applies to --from zoo only; leave it out")):
        args = convert_weights.parse_args([str(original), *argv, "--out", str(out)])
        with pytest.raises(UserError) as raised:
            convert_weights.run(args)
        assert str(raised.value) == message
    with pytest.raises(UserError, match="absent.bin' not found \\(or not a file\\)"):
        convert_weights.run(convert_weights.parse_args([
            str(tmp_path / "absent.bin"), "--from", "toy", "--colour", "red", "--out", str(out)]))
    assert not out.exists()
    entry = dataclasses.replace(MODELS["mtat-self-attention"], converter="toy",
                                options=(("colour", "blue"),))
    assert entry.tags() == ("blue-tone", "silence")


def test_an_option_no_kind_takes_is_one_line(tmp_path):
    config = convert.ConvertConfig(source=str(tmp_path), kind="self_attention",
                                   out=str(tmp_path / "x.keras"), options=(("colour", "red"),))
    with pytest.raises(UserError, match="^--colour is an option of no converter; leave it"):
        convert.convert(config)
    with pytest.raises(UserError, match="^--from transformer needs --size, one of teacher, "
                                        "student; got 'huge'$"):
        convert.convert(dataclasses.replace(config, kind="transformer",
                                            options=(("size", "huge"),)))
    with pytest.raises(UserError, match="^unknown converter 'toy'; valid: resemul, "
                                        "self_attention, transformer, zoo, musicnn$"):
        convert.convert(dataclasses.replace(config, kind="toy", options=()))
