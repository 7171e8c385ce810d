"""The settings tables of docs/settings.md: every Gunicorn setting classified, the page up to
date."""

from __future__ import annotations

import re
from pathlib import Path

import gunicorn
import pytest
from gunicorn.config import KNOWN_SETTINGS

from gunicorn_async_workers import settings_table
from gunicorn_async_workers.config import OPTIONS
from gunicorn_async_workers.settings_table import (
    BEGIN,
    END,
    GUNICORN,
    HONOURED,
    NEWER_THAN_23,
    NOT_APPLICABLE,
    SETTINGS,
    main,
    render,
    stale,
    unclassified,
)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
INSTALLED = {setting.name for setting in KNOWN_SETTINGS}
MAJOR = gunicorn.version_info[0]


def test_every_installed_setting_is_classified() -> None:
    assert unclassified(INSTALLED) == [], (
        f"gunicorn {gunicorn.__version__} has settings settings_table.SETTINGS does not "
        "classify")


def test_no_classified_setting_is_stale() -> None:
    assert stale(INSTALLED, MAJOR) == [], (
        f"classified settings that gunicorn {gunicorn.__version__} does not have (mark them "
        "in NEWER_THAN_23 if they are newer, or drop them)")


def test_the_checks_catch_a_new_and_a_removed_setting() -> None:
    assert unclassified([*SETTINGS, "brand_new_setting"]) == ["brand_new_setting"]
    assert stale(set(SETTINGS) - {"keepalive"}, MAJOR) == ["keepalive"]
    assert stale(set(SETTINGS) - {"asgi_loop"}, 27) == ["asgi_loop"]
    assert stale(set(SETTINGS) - {"asgi_loop"}, 23) == []


def test_newer_than_23_agrees_with_gunicorns_own_docs() -> None:
    """Gunicorn documents `versionadded` on most settings: every one added after 23 is
    marked, and on Gunicorn 23 the marked ones are exactly those it lacks."""
    assert NEWER_THAN_23.issubset(SETTINGS)
    if MAJOR == 23:
        assert set(NEWER_THAN_23) == set(SETTINGS) - INSTALLED
        return
    for setting in KNOWN_SETTINGS:
        added = re.search(r"versionadded::\s*(\d+)", setting.desc or "")
        if added and int(added.group(1)) > 23:
            assert setting.name in NEWER_THAN_23, setting.name


def test_classifications_are_known_and_explained() -> None:
    for name, (kind, text) in SETTINGS.items():
        assert kind in (HONOURED, GUNICORN, NOT_APPLICABLE), name
        assert len(text) > 20 and "|" not in text and "\n" not in text, name


@pytest.mark.parametrize("name", ["worker_connections", "keepalive", "timeout", "threads",
                                  "pre_request", "post_worker_init", "asgi_loop",
                                  "http_parser"])
def test_settings_our_workers_read_are_honoured(name: str) -> None:
    assert SETTINGS[name][0] == HONOURED


def test_every_setting_and_option_appears_once_in_the_rendering() -> None:
    block = render()
    for name in SETTINGS:
        assert len(re.findall(rf"`{name}`", block.split("#### Our own options")[0])) >= 1, name
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    named = [n for row in rows for n in re.findall(r"`(\w+)`", row.split(" | ")[0])]
    assert sorted(named) == sorted([*SETTINGS, *(o.name for o in OPTIONS)])


def test_options_table_comes_from_options() -> None:
    block = render()
    for option in OPTIONS:
        row = next(line for line in block.splitlines() if line.startswith(f"| `{option.name}` |"))
        assert f"`{option.env}`" in row and option.type.values in row and option.doc in row


def test_the_page_is_up_to_date() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    generated = text[text.index(BEGIN):text.index(END) + len(END)]
    assert generated == render(), (
        "docs/settings.md is out of date: run python -m gunicorn_async_workers.settings_table "
        "--write")


def test_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{BEGIN}\nold table\n{END}\n\nafter\n", encoding="utf-8")
    assert main(["--check", "--page", str(readme)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--write", "--page", str(readme)]) == 0
    assert main(["--check", "--page", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# title\n\n") and text.endswith(f"{END}\n\nafter\n")
    assert "old table" not in text


def test_a_readme_without_markers_is_an_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no tables\n", encoding="utf-8")
    with pytest.raises(ValueError, match="settings-table:begin"):
        main(["--check", "--page", str(readme)])


def test_module_docstring_names_the_command() -> None:
    assert "--write" in (settings_table.__doc__ or "")
