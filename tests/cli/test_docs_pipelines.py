"""docs/pipelines.md: the GitHub Actions job is valid YAML and both pipelines run the tag step."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "pipelines.md"


def test_docs_pipelines_github_actions_job_parses_and_runs_the_tag_step() -> None:
    text = DOC.read_text(encoding="utf-8")
    (workflow_text,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    workflow = yaml.safe_load(workflow_text)
    assert workflow["permissions"]["id-token"] == "write"
    steps = workflow["jobs"]["image"]["steps"]
    assert any(step.get("uses", "").startswith("azure/login@") for step in steps)
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "acr-retag tag myapp --source-tag latest" in runs
    assert "acr-retag tag myapp --source-tag latest" in text.split("```groovy", 1)[1]
