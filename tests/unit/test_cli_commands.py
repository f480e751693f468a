"""The ``exporter`` command against a stand-in HTTP server: exit codes, errors shown plainly,
JSON passed through, and a download whose server-given name tries to leave its directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from exporter.cli import main

IDENTITY = {"X-User-Id": "ann", "X-Tenant-Id": "acme"}


@pytest.fixture(autouse=True)
def no_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("API_URL", "TOKEN", "TENANT", "USER", "PROFILE"):
        monkeypatch.delenv(f"EXPORTER_{name}", raising=False)
    monkeypatch.setenv("EXPORTER_PROFILES", str(tmp_path / "profiles.toml"))


def cli(server: HTTPServer, *argv: str) -> int:
    return main(["--api-url", server.url_for("/").rstrip("/"), "--tenant", "acme", "--user", "ann", *argv])


def test_json_output_is_the_api_answer(httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]) -> None:
    answer = {"id": "e1", "name": "Plant", "nested": {"a": [1, 2]}}
    httpserver.expect_request("/exports/e1", method="GET", headers=IDENTITY).respond_with_json(answer)
    assert cli(httpserver, "-o", "json", "exports", "get", "e1") == 0
    assert json.loads(capsys.readouterr().out) == answer


def test_an_api_error_is_its_message_and_exit_3(
    httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    httpserver.expect_request("/jobs/j1/cancel", method="POST").respond_with_json(
        {"message": "Job 'j1' is done; it cannot be cancelled"}, status=409
    )
    assert cli(httpserver, "jobs", "cancel", "j1") == 3
    captured = capsys.readouterr()
    assert captured.err.strip() == "error: 409: Job 'j1' is done; it cannot be cancelled"
    assert captured.out == ""


def test_an_unreachable_api_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--api-url", "http://127.0.0.1:9", "--timeout", "2", "exports", "list"]) == 3
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err


def test_usage_errors_are_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["dlq", "show", "--topic", "messages", "--offset", "../1"])
    assert usage.value.code == 2
    with pytest.raises(SystemExit) as usage:
        main(["exports", "list", "--page-size", "100000"])
    assert usage.value.code == 2
    assert "not between 1 and 1000" in capsys.readouterr().err
    (tmp_path / "spec.json").write_text("[1, 2]")
    assert main(["exports", "create", "-f", str(tmp_path / "spec.json")]) == 2
    assert "a JSON object is expected" in capsys.readouterr().err
    assert main(["--tenant", "a/b", "exports", "list"]) == 2
    assert main(["topics", "tail", "--topic", "no.such.topic"]) == 2
    assert "unknown topic 'no.such.topic'" in capsys.readouterr().err


def test_watch_exits_1_when_the_job_failed(
    httpserver: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    running = {"id": "j1", "status": "inProgress", "progress": {"rows": 10}}
    failed = {"id": "j1", "status": "failed", "error": "the data store was unavailable"}
    httpserver.expect_ordered_request("/jobs/j1").respond_with_json(running)
    httpserver.expect_ordered_request("/jobs/j1").respond_with_json(failed)
    assert cli(httpserver, "-o", "json", "jobs", "watch", "j1", "--interval", "0.1") == 1
    assert json.loads(capsys.readouterr().out) == failed


def test_a_hostile_file_name_lands_inside_the_directory(httpserver: HTTPServer, tmp_path: Path) -> None:
    hostile = "../../../escaped.csv"
    job = {"id": "j1", "status": "done", "files": [{"name": hostile, "key": "k"}]}
    httpserver.expect_request("/jobs/j1").respond_with_json(job)
    link = {"url": httpserver.url_for("/signed/k"), "file": {"name": hostile}}
    httpserver.expect_request("/jobs/j1/download", query_string="file=0").respond_with_json(link)
    httpserver.expect_request("/signed/k").respond_with_data(b"a,b\n1,2\n")
    out = tmp_path / "deep" / "out"
    assert cli(httpserver, "download", "j1", "--out", str(out)) == 0
    assert (out / "escaped.csv").read_bytes() == b"a,b\n1,2\n"
    assert sorted(path.name for path in tmp_path.rglob("*") if path.is_file()) == ["escaped.csv"]
