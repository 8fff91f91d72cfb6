"""Recipes (``--recipe FILE.toml``): loading, checking, flags over the recipe, and the shipped
recipe for samples/other-platform/ end to end against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import SAMPLES, invoke, stored_imported_ids
from trackly_migrate.errors import UsageError
from trackly_migrate.recipes import RECIPE_KEYS, Recipe, load_recipe, merged_map_options
from trackly_migrate.sandbox.server import RunningSandbox

EXPORT = SAMPLES / "other-platform" / "messages_export.csv"
RECIPE = SAMPLES / "other-platform" / "recipe.toml"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_recipe_loads_with_every_key() -> None:
    recipe = load_recipe(RECIPE)
    assert recipe.map["id"] == "MessageID"
    assert (recipe.default_region, recipe.timezone) == ("US", "America/New_York")
    assert (recipe.encoding, recipe.delimiter, recipe.timestamp_format) == ("utf-8", ",", "iso")


def test_timestamp_format_may_be_a_table_per_field(tmp_path: Path) -> None:
    path = write(tmp_path / "r.toml", '[timestamp_format]\ntimestamp = "epoch_ms"\n')
    assert load_recipe(path).timestamp_format == {"timestamp": "epoch_ms"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('maps = "x"\n', "unknown key(s): maps; a recipe may set " + ", ".join(RECIPE_KEYS)),
        ("timezone = 3\n", "timezone must be a string, not 3"),
        ('map = "id"\n', "map must be [map]"),
        ("[map]\nid = 1\n", "map must be [map]"),
        ("timestamp_format = 10\n", "timestamp_format must be a string, not 10"),
        ("[timestamp_format]\ntimestamp = 1\n", "timestamp_format must be a string or a table"),
        ('\ntimezone = "x\n', "not valid TOML: "),
    ],
)
def test_bad_recipe_is_a_usage_error(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "r.toml", text)
    with pytest.raises(UsageError) as caught:
        load_recipe(path)
    assert expected in caught.value.message
    assert str(path) in caught.value.message


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "r.toml", 'default_region = "US"\n\n[map\n')
    with pytest.raises(UsageError, match="line 3"):
        load_recipe(path)


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"Cannot read the recipe .*No such file"):
        load_recipe(tmp_path / "absent.toml")


def test_given_values_override_the_recipe_and_map_merges_by_field() -> None:
    recipe = Recipe(map={"id": "A", "to_number": "B"}, timezone="UTC", encoding="cp1252")
    merged = recipe.overridden_by(Recipe(map={"id": "Z"}, timezone="Europe/Paris"))
    assert merged.map == {"id": "Z", "to_number": "B"}
    assert (merged.timezone, merged.encoding, merged.delimiter) == ("Europe/Paris", "cp1252", None)


def test_map_options_over_recipe_keep_what_was_typed() -> None:
    assert merged_map_options({"id": "A", "message": "M"}, ["id=X", "bogus"]) == [
        "message=M",
        "id=X",
        "bogus",
    ]


@given(
    recipe=st.dictionaries(st.sampled_from(["id", "to_number", "timestamp"]), st.text("abc")),
    typed=st.dictionaries(st.sampled_from(["id", "message"]), st.text("xyz", min_size=1)),
)
def test_typed_map_wins_and_every_field_is_kept(
    recipe: dict[str, str], typed: dict[str, str]
) -> None:
    options = merged_map_options(recipe, [f"{k}={v}" for k, v in typed.items()])
    as_dict = dict(option.split("=", 1) for option in options)
    assert as_dict == {**recipe, **typed}
    assert len(options) == len(as_dict)  # a typed field is never given twice


# --- through the real CLI -------------------------------------------------------------------


def test_shipped_recipe_imports_the_other_platform_export(sandbox: RunningSandbox) -> None:
    result = invoke(
        ["import-sends", str(EXPORT), "--recipe", str(RECIPE), "--json"], sandbox=sandbox
    )
    assert result.returncode == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["read"] == 400 and summary["imported"] == 400
    assert len([i for i in stored_imported_ids(sandbox) if i.startswith("OP-")]) == 400


def test_command_line_overrides_the_recipe(tmp_path: Path) -> None:
    # A recipe that is wrong in three ways, each fixed by an option on the command line.
    recipe = write(
        tmp_path / "wrong.toml",
        RECIPE.read_text(encoding="utf-8")
        .replace('delimiter = ","', 'delimiter = ";"')
        .replace('default_region = "US"', 'default_region = "FR"')
        .replace('id = "MessageID"', 'id = "NoSuchColumn"'),
    )
    base = ["import-sends", str(EXPORT), "--recipe", str(recipe), "--dry-run", "--json"]
    wrong = invoke(base, api_key=None)
    assert wrong.returncode != 0
    fixed = invoke(
        [*base, "--delimiter", ",", "--default-region", "US", "--map", "id=MessageID"],
        api_key=None,
    )
    assert fixed.returncode == 0, fixed.output
    assert json.loads(fixed.stdout)["rejected_local"] == 0


def test_unknown_recipe_key_exits_2_naming_it(tmp_path: Path) -> None:
    recipe = write(tmp_path / "r.toml", 'time_zone = "UTC"\n')
    result = invoke(["import-sends", str(EXPORT), "--recipe", str(recipe), "--dry-run"])
    assert result.returncode == 2, result.output
    assert "unknown key(s): time_zone" in result.stderr and "timezone" in result.stderr
    assert "Traceback" not in result.output


def test_recipe_values_get_the_options_checks(tmp_path: Path) -> None:
    recipe = write(tmp_path / "r.toml", 'default_region = "usa"\n')
    result = invoke(["import-sends", str(EXPORT), "--recipe", str(recipe), "--dry-run"])
    assert result.returncode == 2, result.output
    assert "default_region (--default-region)" in result.stderr


def test_a_recipes_timestamp_format_reaches_the_records_and_a_flag_overrides_it(
    tmp_path: Path,
) -> None:
    source = tmp_path / "epoch.csv"
    source.write_text(
        "id,to_number,timestamp\nE1,+14155550100,1700000000\nE2,+14155550101,1700000060\n",
        encoding="utf-8",
    )
    recipe = write(tmp_path / "epoch.toml", 'timestamp_format = "epoch"\n')
    base = ["import-sends", str(source), "--recipe", str(recipe), "--dry-run", "--json"]
    read_as_epoch = invoke(base, api_key=None)
    assert read_as_epoch.returncode == 0, read_as_epoch.output
    assert json.loads(read_as_epoch.stdout)["rejected_local"] == 0
    # The flag wins over the recipe: read as ISO, the same cells are not timestamps.
    as_iso = invoke([*base, "--timestamp-format", "iso", "--force"], api_key=None)
    assert as_iso.returncode == 1, as_iso.output
    assert json.loads(as_iso.stdout)["rejected_local"] == 2
    assert "--timestamp-format epoch" in (tmp_path / "epoch.errors.csv").read_text()
