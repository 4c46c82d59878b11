"""The operator commands of `flask --app taskdriver taskdriver …`."""

from __future__ import annotations

from flask import Flask

from conftest import ALL_BACKENDS, Api

BACKENDS = ALL_BACKENDS


def test_create_and_list_projects(app: Flask, api: Api) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(args=["taskdriver", "create-project", "nightly",
                                  "--description", "Nightly audits"])
    assert created.exit_code == 0
    project_id = created.output.strip()
    project = api.get(f"/api/projects/{project_id}").get_json()["data"]
    assert project["name"] == "nightly" and project["description"] == "Nightly audits"
    api.task(project_id)
    listed = runner.invoke(args=["taskdriver", "list-projects"])
    assert listed.exit_code == 0
    assert listed.output.split("\t")[:3] == [project_id, "nightly", "active"]
    assert "queued=1" in listed.output
    duplicate = runner.invoke(args=["taskdriver", "create-project", "nightly"])
    assert duplicate.exit_code == 1
    assert "Error: A project named nightly already exists" in duplicate.output


def test_create_project_refuses_what_the_api_refuses(app: Flask, api: Api) -> None:
    runner = app.test_cli_runner()
    for bad in ("", "bad name!", "x" * 5000, "tab\there", "newline\n"):
        result = runner.invoke(args=["taskdriver", "create-project", bad])
        assert result.exit_code != 0, bad
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: Validation failed: name: "), bad
        assert "Traceback" not in result.output
    assert api.get("/api/projects?status=all").get_json()["pagination"]["total"] == 0


def test_reap_of_an_unknown_project_is_an_error(app: Flask, api: Api) -> None:
    runner = app.test_cli_runner()
    for unknown in ("nope", "00000000-0000-4000-8000-000000000000", "../../x"):
        result = runner.invoke(args=["taskdriver", "reap", "--project", unknown])
        assert result.exit_code == 1, unknown
        assert result.output.strip() == "Error: Project not found"
    api.project("known")
    result = runner.invoke(args=["taskdriver", "reap", "--project", "known"])
    assert result.exit_code == 0 and result.output.startswith("reclaimedTasks=0")
