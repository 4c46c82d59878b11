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
