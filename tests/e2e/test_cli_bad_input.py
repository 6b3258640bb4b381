"""Bad input: one readable line on stderr, exit code 2, and no action created."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli import bulkactions, command, import_args

pytestmark = pytest.mark.e2e

GOOD = b"email,first_name\na@x.com,Ann\n"


@pytest.mark.parametrize(
    ("file_name", "content", "extra", "message"),
    [
        ("missing.csv", None, [], "no such file"),
        ("empty.csv", b"", [], "is empty"),
        ("header.csv", b"email,first_name\n", [], "has no records"),
        ("latin1.csv", b"email,first_name\nb@x.com,Jos\xe9\n", [], "not valid UTF-8"),
        ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", [], "binary file"),
        ("columns.csv", b"email,shoe_size\na@x.com,9\n", [], "unknown column(s) shoe_size"),
        ("good.csv", GOOD, ["--entity", "lead"], "Invalid value for '--entity'"),
        ("good.csv", GOOD, ["--action", "merge"], "Invalid value for '--action'"),
        ("good.csv", GOOD, ["--chunk-size", "0"], "Invalid value for '--chunk-size'"),
        ("good.csv", GOOD, ["--chunk-size", "many"], "Invalid value for '--chunk-size'"),
        ("good.csv", GOOD, ["--batch-size", "0"], "Invalid value for '--batch-size'"),
        ("good.csv", GOOD, ["--batch-size", "5", "--chunk-size", "7"], "old name of --chunk-size"),
        ("good.csv", GOOD, ["--match-by", "phone"], "matches by 'email' only"),
        ("good.txt", GOOD, [], "--format csv|jsonl|json"),
        ("caf\udce9.csv", GOOD, [], "is not valid UTF-8; rename the file or its folder"),
        ("broken.json", b'[{"email": "a@x.com"},', [], "not closed"),
        ("nan.json", b'[{"email": "a@x.com"}, {"email": "b@x.com", "score": NaN}]', [], "NaN is not valid JSON"),
        ("huge.json", b'[{"email": "a@x.com", "score": 1e400}]', [], "out of range for a double"),
        ("surrogate.json", b'[{"email": "a@x.com"},\n{"first_name": "\\ud800"}]', [], "line 2 holds a lone UTF-16"),
        (
            "digits.json",
            b'[{"email": "a@x.com", "phone": ' + b"9" * 10_000 + b"}]",
            [],
            "10000 digits, which is out of",
        ),
        ("deep.json", b"[" + b'{"a": ' * 10_000 + b"1" + b"}" * 10_000 + b"]", [], "nested deeper than 32 levels"),
        ("deep33.json", b'[{"email": "a@x.com", "tags": ' + b"[" * 32 + b"]" * 32 + b"}]", [], "nested deeper"),
    ],
)
def test_bad_input_is_refused_with_one_line_and_creates_nothing(
    tmp_path: Path, file_name: str, content: bytes | None, extra: list[str], message: str
) -> None:
    path = tmp_path / file_name
    if content is not None:
        path.write_bytes(content)
    options = {"--entity": "contact", "--action": "insert"} | dict(zip(extra[::2], extra[1::2], strict=True))
    args = ["import", str(path), *[part for pair in options.items() for part in pair]]
    run = bulkactions(tmp_path / "data", *args)
    assert run.code == 2, (run.stdout, run.stderr)
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith("bulkactions: error: ")
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    # Checked before any store is opened: not even the data dir is made.
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "not-an-id"], "is not an action id"),
        (["status", "00000000-0000-0000-0000-000000000001"], "no action"),
        (["logs", "00000000-0000-0000-0000-000000000001"], "no action"),
        (["history", "00000000-0000-0000-0000-000000000001", "--row", "1"], "no action"),
        (["resume", "00000000-0000-0000-0000-000000000001"], "no action"),
        (["logs", "x", "--outcome", "maybe"], "Invalid value for '--outcome'"),
        (["frobnicate"], "No such command"),
    ],
)
def test_unknown_ids_and_bad_commands_get_one_line_and_exit_two(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "c.csv").write_bytes(GOOD)
    assert bulkactions(tmp_path / "data", *import_args(tmp_path / "c.csv")).code == 0
    run = bulkactions(tmp_path / "data", *args)
    assert run.code == 2
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert message in run.stderr


def test_an_import_over_the_daily_records_quota_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_bytes(b"email\n" + b"".join(b"u%d@x.com\n" % i for i in range(30)))
    env = {**os.environ, "BULK_RECORDS_PER_DAY": "50"}
    first = bulkactions(
        tmp_path / "data",
        *import_args(tmp_path / "c.csv"),
        env=env,
    )
    assert first.code == 0, first.stderr
    second = bulkactions(
        tmp_path / "data",
        *import_args(tmp_path / "c.csv"),
        env=env,
    )
    assert second.code == 3
    assert second.stderr.startswith("bulkactions: error: quota records_per_day exceeded")
    assert "retry in" in second.stderr and len(second.stderr.splitlines()) == 1
    assert len(json.loads(bulkactions(tmp_path / "data", "status", "--json").stdout)) == 1


def test_an_import_larger_than_the_daily_records_quota_is_refused_as_one_that_can_never_fit(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_bytes(b"email\n" + b"".join(b"u%d@x.com\n" % i for i in range(60)))
    run = bulkactions(
        tmp_path / "data", *import_args(tmp_path / "c.csv"), env={**os.environ, "BULK_RECORDS_PER_DAY": "50"}
    )
    assert run.code == 3
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith("bulkactions: error: quota records_per_day exceeded")
    assert "can never" in run.stderr and "retry" not in run.stderr
    assert json.loads(bulkactions(tmp_path / "data", "status", "--json").stdout) == []


@pytest.mark.parametrize(
    ("blocked", "args", "env", "extra"),
    [
        ("uvicorn", ["serve", "--port", "0"], {}, "api"),
        (
            "psycopg",
            ["status"],
            {"BULK_EVENT_STORE": "postgres", "BULK_POSTGRES_DSN": "postgresql://postgres@127.0.0.1/test"},
            "production",
        ),
    ],
)
def test_a_missing_optional_extra_is_one_line_naming_the_install(
    tmp_path: Path, blocked: str, args: list[str], env: dict[str, str], extra: str
) -> None:
    # README's first command installs the base package only; `serve` and the production
    # adapters need extras. The module is made unimportable as if it were not installed.
    code = (
        f"import sys; sys.modules[{blocked!r}] = None; from api.cli import main; "
        f"main(['--data-dir', {str(tmp_path / 'data')!r}, *{args!r}])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"bulkactions: error: {blocked} is not installed; this needs: pip install -e '.[{extra}]'"
    ]


UNKNOWN = "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize("args", [["resume", UNKNOWN], ["cancel", UNKNOWN], ["history", UNKNOWN, "--row", "1"]])
def test_an_unknown_action_id_is_named_in_one_line_without_the_librarys_words(tmp_path: Path, args: list[str]) -> None:
    data = tmp_path / "data"
    (tmp_path / "c.csv").write_bytes(GOOD)
    assert bulkactions(data, *import_args(tmp_path / "c.csv")).code == 0
    run = bulkactions(data, *args)
    assert run.code == 2
    assert run.stderr == f"bulkactions: error: no action {UNKNOWN}\n"


@pytest.mark.parametrize(
    "args",
    [["status"], ["status", UNKNOWN], ["logs", UNKNOWN], ["history", UNKNOWN, "--row", "1"], ["verify"], ["replay"]],
)
def test_a_data_dir_that_holds_no_store_is_refused_and_not_created(tmp_path: Path, args: list[str]) -> None:
    mistyped = tmp_path / "dta"
    run = bulkactions(mistyped, *args)
    assert run.code == 2, run.stdout + run.stderr
    assert run.stderr.count("\n") == 1 and "no bulk actions data" in run.stderr and str(mistyped) in run.stderr
    assert not mistyped.exists()


@pytest.fixture
def read_only_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir with an import in it, then mounted read-only (root ignores file modes)."""
    data = tmp_path / "data"
    (tmp_path / "c.csv").write_bytes(GOOD)
    assert bulkactions(data, *import_args(tmp_path / "c.csv")).code == 0
    subprocess.run(["mount", "--bind", str(data), str(data)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(data)], check=True)
        yield data
    finally:
        subprocess.run(["umount", str(data)], check=True)


@pytest.mark.parametrize("args", [["status"], ["import", "c.csv", "--entity", "contact", "--action", "insert"]])
def test_a_read_only_data_dir_is_one_line_not_a_traceback(
    read_only_data_dir: Path, tmp_path: Path, args: list[str]
) -> None:
    args = [str(tmp_path / a) if a == "c.csv" else a for a in args]
    run = bulkactions(read_only_data_dir, *args)
    assert run.code == 2, run.stdout + run.stderr
    assert run.stderr.count("\n") == 1 and "read-only" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BULK_LOG_LEVEL", "verbose", "BULK_LOG_LEVEL"),
        ("BULK_LOG_FORMAT", "xml", "BULK_LOG_FORMAT"),
        ("BULK_EVENT_STORE", "oracle", "BULK_EVENT_STORE"),
        ("BULK_WORKERS", "lots", "BULK_WORKERS"),
    ],
)
def test_a_bad_setting_in_the_environment_is_one_line_naming_the_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    run = bulkactions(tmp_path / "data", "status", env={**os.environ, variable: value})
    assert run.code == 2, (run.stdout, run.stderr)
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith("bulkactions: error: ")
    assert message in run.stderr and value in run.stderr


def test_json_lines_the_event_store_cannot_hold_or_that_repeat_a_key_fail_alone(tmp_path: Path) -> None:
    lines = [
        b'{"email": "a@x.com"}',
        b'{"email": "b@x.com", "first_name": "\\ud800"}',
        b'{"email": "c@x.com", "phone": ' + b"9" * 10_000 + b"}",
        b'{"email": "d@x.com", "tags": ' + b"[" * 300 + b"]" * 300 + b"}",
        b'{"email": "e@x.com", "email": "f@x.com"}',
        b'{"email": "g@x.com"}',
    ]
    (tmp_path / "c.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    run = bulkactions(tmp_path / "data", *import_args(tmp_path / "c.jsonl"))
    assert run.code == 0, run.stderr
    summary = run.json_last()
    assert (summary["status"], summary["succeeded"], summary["failed"]) == ("COMPLETED", 2, 4)
    logs = bulkactions(tmp_path / "data", "logs", summary["action_id"], "--outcome", "failed")
    errors = {line["row"]: line["errors"] for line in map(json.loads, logs.lines)}
    assert [errors[row][0]["code"] for row in (2, 3, 4, 5)] == ["unparseable"] * 3 + ["duplicate_field"]
    assert "nested deeper than 32 levels" in errors[4][0]["message"]
    assert errors[5][0]["message"] == "the key 'email' is given twice in one object"
    assert bulkactions(tmp_path / "data", "verify").code == 0


@pytest.mark.parametrize("option", ["--account", "--idempotency-key"])
def test_an_argument_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path, option: str) -> None:
    (tmp_path / "c.csv").write_bytes(GOOD)
    args = [*import_args(tmp_path / "c.csv"), option, "acme\udcff"]  # the byte 0xff, as Python reads argv
    run = subprocess.run(
        [os.fsencode(a) for a in command(tmp_path / "data", *args)], capture_output=True, timeout=60, check=False
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.count(b"\n") == 1 and b"UTF-8" in run.stderr
    assert not (tmp_path / "data").exists()
